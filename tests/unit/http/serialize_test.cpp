// Serialiser round trips, chunk framing, error responses, header helpers, redaction.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/http/serialize.hpp"
#include "proxy/http/url_redact.hpp"
#include "tests/unit/http/feed.hpp"

using namespace airlock::http;
using namespace airlock::http::test;

namespace {

RequestHead parse_head(std::string_view input) {
  RequestParser parser;
  std::vector<RequestEvent> events;
  parser.feed(bytes(input), events);
  REQUIRE(!events.empty());
  auto* head = std::get_if<RequestHeadEvent>(&events.front());
  REQUIRE(head != nullptr);
  return head->head;
}

}  // namespace

TEST_CASE("serialize_request_head writes the request line and headers in order") {
  RequestHead head;
  head.method = "POST";
  head.target = "/v1/chat?x=1";
  head.version_minor = 1;
  head.headers = {{"Host", "api.test"}, {"Content-Length", "2"}, {"X-Empty", ""}};
  CHECK(serialize_request_head(head) ==
        "POST /v1/chat?x=1 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 2\r\nX-Empty: \r\n\r\n");
  head.version_minor = 0;
  head.headers.clear();
  CHECK(serialize_request_head(head) == "POST /v1/chat?x=1 HTTP/1.0\r\n\r\n");
}

TEST_CASE("serialize then parse gives the same head") {
  for (const char* input : {
           "GET /a?b=c HTTP/1.1\r\nHost: a.test\r\nAccept:   text/html  \r\nX-Empty:\r\n\r\n",
           "POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n",
           "PUT /c HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: Chunked\r\nConnection: close\r\n\r\n",
           "GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
           "OPTIONS * HTTP/1.0\r\n\r\n",
       }) {
    CAPTURE(input);
    const RequestHead first = parse_head(input);
    const std::string wire = serialize_request_head(first);
    const RequestHead second = parse_head(wire);
    CHECK(second == first);
    CHECK(serialize_request_head(second) == wire);
  }
}

TEST_CASE("chunk framing") {
  CHECK(chunk_frame(bytes("abc")) == "3\r\nabc\r\n");
  CHECK(chunk_frame(bytes(std::string(300, 'x'))) == "12c\r\n" + std::string(300, 'x') + "\r\n");
  CHECK(chunk_frame(bytes(std::string(16, 'y'))) == "10\r\n" + std::string(16, 'y') + "\r\n");
  CHECK(chunk_frame({}).empty());
  CHECK(last_chunk() == "0\r\n\r\n");

  // What we frame, a parser reads back unchanged.
  const std::string body = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
                           chunk_frame(bytes("hello ")) + chunk_frame(bytes(std::string(40, 'z'))) +
                           last_chunk();
  const auto log = requests(body);
  REQUIRE(log.size() == 3);
  CHECK(log[1] == "body hello " + std::string(40, 'z'));
}

TEST_CASE("error_response") {
  const nlohmann::json body = {{"error", "blocked"}, {"reason", "host_not_allowed"}};
  const std::string payload = "{\"error\":\"blocked\",\"reason\":\"host_not_allowed\"}\n";
  CHECK(error_response(403, "Forbidden", body, true) ==
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(payload.size()) + "\r\nConnection: close\r\n\r\n" + payload);
  CHECK(error_response(502, "Bad Gateway", body, false) ==
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(payload.size()) + "\r\n\r\n" + payload);

  // Guest-controlled text that is not UTF-8 does not throw; a phrase can't break the line.
  const nlohmann::json odd = {{"host", std::string("a\xff\xfe")}};
  std::string response;
  CHECK_NOTHROW(response = error_response(400, "Bad\r\nX: y", odd, true));
  CHECK(response.starts_with("HTTP/1.1 400 BadX: y\r\n"));

  // It parses as one complete response.
  ResponseParser parser;
  parser.expect_response_to("GET");
  std::vector<ResponseEvent> events;
  const std::string forbidden = error_response(403, "Forbidden", body, true);
  CHECK(parser.feed(bytes(forbidden), events) == forbidden.size());
  REQUIRE(events.size() == 3);
  CHECK(std::holds_alternative<ResponseCompleteEvent>(events[2]));
}

TEST_CASE("header helpers are case-insensitive") {
  std::vector<Header> headers = {{"Host", "a"}, {"X-A", "1"}, {"x-a", "2"}, {"Accept", "*/*"}};
  REQUIRE(find_header(headers, "HOST") != nullptr);
  CHECK(find_header(headers, "host")->value == "a");
  CHECK(find_header(headers, "X-a")->value == "1");
  CHECK(find_header(headers, "missing") == nullptr);

  set_header(headers, "X-A", "3");
  CHECK(headers == std::vector<Header>{{"Host", "a"}, {"X-A", "3"}, {"Accept", "*/*"}});
  set_header(headers, "Transfer-Encoding", "chunked");
  CHECK(headers.back() == Header{"Transfer-Encoding", "chunked"});

  CHECK(remove_headers(headers, "x-A") == 1);
  CHECK(remove_headers(headers, "x-A") == 0);
  CHECK(headers.size() == 3);
  CHECK(iequals("Content-Length", "content-LENGTH"));
  CHECK_FALSE(iequals("Content-Length", "Content-Lengt"));
}

TEST_CASE("query values are redacted, names kept") {
  struct Case {
    const char* in;
    const char* out;
  };
  for (const Case& c : std::vector<Case>{
           {"/p?a=1&b=&c", "/p?a=[REDACTED]&b=&c"},
           {"/p", "/p"},
           {"/p#frag", "/p"},
           {"/p?token=s3cret#frag", "/p?token=[REDACTED]"},
           {"/p?", "/p?"},
           {"/p?a=1=2", "/p?a=[REDACTED]"},
           {"/p?&&a=x", "/p?&&a=[REDACTED]"},
           {"/p?=v", "/p?=[REDACTED]"},
           {"/search?q=hello%20world&lang=en", "/search?q=[REDACTED]&lang=[REDACTED]"},
           {"http://h.test/x?k=v", "http://h.test/x?k=[REDACTED]"},
           {"", ""},
       }) {
    CAPTURE(c.in);
    CHECK(redact_query_values(c.in) == c.out);
  }
}
