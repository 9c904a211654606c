// ResponseParser: body framing by status and request method, informational and
// switching responses, EOF handling, pipelining, refusals and caps.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/unit/http/feed.hpp"

using namespace airlock::http;
using namespace airlock::http::test;
using Log = std::vector<std::string>;

namespace {

std::string refusal(std::string_view input, const std::vector<std::string>& methods = {"GET"},
                    bool eof = false, const ParserLimits& limits = ParserLimits{}) {
  Log log = responses(input, methods, eof, limits);
  REQUIRE(!log.empty());
  const std::string& line = log.back();
  REQUIRE_MESSAGE(line.starts_with("error "), line);
  return line.substr(6);
}

}  // namespace

TEST_CASE("Content-Length body") {
  CHECK(responses("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
                  {"GET"}) ==
        Log{"head 200 OK 1.1 keep-alive [Content-Length: 5] [Content-Type: text/plain]", "body 5",
            "complete"});
}

TEST_CASE("chunked body counts decoded bytes") {
  CHECK(responses("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
                  {"POST"}) ==
        Log{"head 200 OK 1.1 keep-alive [Transfer-Encoding: chunked]", "body 11", "complete"});
}

TEST_CASE("a body read until close ends with finish()") {
  const std::string input = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome bytes";
  CHECK(responses(input, {"GET"}, /*eof=*/true) ==
        Log{"head 200 OK 1.1 close [Content-Type: text/plain]", "body 10", "complete"});
  CHECK(responses(input, {"GET"}, /*eof=*/false) ==
        Log{"head 200 OK 1.1 close [Content-Type: text/plain]", "body 10"});
  // With nothing after the head, finish() still completes it (an empty body).
  CHECK(responses("HTTP/1.0 200 OK\r\n\r\n", {"GET"}, true) ==
        Log{"head 200 OK 1.0 close", "complete"});
  // Transfer-Encoding without chunked last: the body runs to EOF (RFC 9112 6.3).
  CHECK(responses("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz", {"GET"}, true) ==
        Log{"head 200 OK 1.1 close [Transfer-Encoding: gzip]", "body 3", "complete"});
}

TEST_CASE("finish() inside a message is truncated; between messages it is nothing") {
  CHECK(refusal("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", {"GET"}, true) == "truncated");
  CHECK(refusal("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", {"GET"}, true) ==
        "truncated");
  CHECK(refusal("HTTP/1.1 200 OK\r\nContent-Le", {"GET"}, true) == "truncated");
  CHECK(responses("HTTP/1.1 204 No Content\r\n\r\n", {"GET"}, true) ==
        Log{"head 204 No Content 1.1 keep-alive", "complete"});
  CHECK(responses("", {"GET"}, true).empty());

  ResponseParser parser;
  std::vector<ResponseEvent> events;
  parser.finish(events);
  CHECK(events.empty());
  CHECK_FALSE(parser.failed());
}

TEST_CASE("a response to HEAD has no body, whatever Content-Length says") {
  CHECK(responses("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                  {"HEAD", "GET"}) ==
        Log{"head 200 OK 1.1 keep-alive [Content-Length: 1234]", "complete",
            "head 200 OK 1.1 keep-alive [Content-Length: 2]", "body 2", "complete"});
}

TEST_CASE("100 Continue, then the final response") {
  ResponseParser parser;
  parser.expect_response_to("POST");
  const Log log = responses("HTTP/1.1 100 Continue\r\n\r\n"
                            "HTTP/1.1 102 Processing\r\n\r\n"
                            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nid",
                            {"POST"});
  CHECK(log == Log{"head 100 Continue 1.1 keep-alive informational",
                   "head 102 Processing 1.1 keep-alive informational",
                   "head 201 Created 1.1 keep-alive [Content-Length: 2]", "body 2", "complete"});

  std::vector<ResponseEvent> events;
  parser.feed(bytes("HTTP/1.1 100 Continue\r\n\r\n"), events);
  CHECK(parser.pending() == 1);  // informational: the request still waits
  parser.feed(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), events);
  CHECK(parser.pending() == 0);
}

TEST_CASE("204 and 304 have no body") {
  CHECK(responses("HTTP/1.1 204 No Content\r\n\r\n"
                  "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
                  {"DELETE", "GET", "GET"}) ==
        Log{"head 204 No Content 1.1 keep-alive", "complete",
            "head 304 Not Modified 1.1 keep-alive [ETag: \"x\"]", "complete",
            "head 200 OK 1.1 keep-alive [Content-Length: 1]", "body 1", "complete"});
}

TEST_CASE("101 switches protocols; the bytes after the head are tunnel data") {
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  CHECK(responses(head + "\x81\x02hi", {"GET"}) ==
        Log{"head 101 Switching Protocols 1.1 close [Upgrade: websocket] [Connection: Upgrade]",
            "upgrade", "rest \x81\x02hi"});

  ResponseParser parser;
  parser.expect_response_to("GET");
  std::vector<ResponseEvent> events;
  CHECK(parser.feed(bytes(head + "tunnel"), events) == head.size());
  CHECK(parser.upgraded());
  CHECK(parser.pending() == 0);
  events.clear();
  CHECK(parser.feed(bytes("more"), events) == 0);
  CHECK(events.empty());
}

TEST_CASE("a 2xx to CONNECT is a tunnel; a refusal is not") {
  CHECK(responses("HTTP/1.1 200 Connection established\r\n\r\nTLS", {"CONNECT"}) ==
        Log{"head 200 Connection established 1.1 close", "upgrade", "rest TLS"});
  CHECK(responses("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", {"CONNECT"}) ==
        Log{"head 403 Forbidden 1.1 keep-alive [Content-Length: 2]", "body 2", "complete"});
}

TEST_CASE("pipelined responses") {
  CHECK(responses("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
                  "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nend",
                  {"GET", "GET", "GET"}) ==
        Log{"head 200 OK 1.1 keep-alive [Content-Length: 1]", "body 1", "complete",
            "head 404 Not Found 1.1 keep-alive [Transfer-Encoding: chunked]", "body 2", "complete",
            "head 200 OK 1.1 close [Content-Length: 3] [Connection: close]", "body 3", "complete"});
}

TEST_CASE("every byte is consumed up to a stop (raw forwarding)") {
  const std::string input =
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  ResponseParser parser;
  parser.expect_response_to("GET");
  parser.expect_response_to("GET");
  std::vector<ResponseEvent> events;
  CHECK(parser.feed(bytes(input), events) == input.size());
  CHECK(events.size() == 5);  // head body complete, head complete
}

TEST_CASE("a response nobody asked for") {
  CHECK(refusal("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {}) == "unexpected_response");
  CHECK(refusal("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", {"GET"}) ==
        "unexpected_response");
}

TEST_CASE("response smuggling shapes") {
  CHECK(refusal("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") ==
        "smuggling_cl_te");
  CHECK(refusal("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n") ==
        "smuggling_cl_te");
  CHECK(refusal("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc") ==
        "duplicate_content_length");
  CHECK(refusal("HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\nabc") == "bad_content_length");
  CHECK(refusal("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n") == "obs_fold");
  CHECK(refusal("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == "bad_chunk_size");
  CHECK(refusal("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        "bad_transfer_encoding");
}

TEST_CASE("bad status lines and versions") {
  CHECK(refusal("HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n") == "bad_version");
  CHECK(refusal("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n") == "bad_version");
  CHECK(refusal("HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n") == "bad_response");
  CHECK(refusal("HTTP/1.1 600 High\r\nContent-Length: 0\r\n\r\n") == "bad_response");
  CHECK(refusal("HTTP/1.1 2000 OK\r\n\r\n") == "bad_response");
  CHECK(refusal("SSH-2.0-OpenSSH\r\n") == "bad_response");
  CHECK(refusal("HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n") == "bad_response");
}

TEST_CASE("a response without a reason phrase") {
  CHECK(responses("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", {"GET"}) ==
        Log{"head 200  1.1 keep-alive [Content-Length: 0]", "complete"});
}

TEST_CASE("response caps") {
  ParserLimits limits;
  limits.max_head_bytes = 128;
  limits.max_headers = 4;
  CHECK(refusal("HTTP/1.1 200 OK\r\nX: " + std::string(200, 'x') + "\r\n\r\n", {"GET"}, false,
                limits) == "header_too_large");
  CHECK(refusal("HTTP/1.1 200 OK\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n", {"GET"}, false,
                limits) == "too_many_headers");
  CHECK(responses("HTTP/1.1 200 OK\r\nA: 1\r\nB: 1\r\nC: 1\r\nContent-Length: 0\r\n\r\n", {"GET"}, false,
                  limits)
            .back() == "complete");
}
