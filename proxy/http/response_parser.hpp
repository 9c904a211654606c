// ResponseParser: the upstream's HTTP/1.x responses, incrementally from arbitrary chunks
// (sans-IO, over llhttp in strict mode).
//
// Theory of operation. Responses are forwarded to the guest as the raw bytes the parser
// consumed; the parser only finds where each response ends, its status and its headers,
// so the proxy knows when an exchange is over and what to log. Whether a response has a
// body depends on the request it answers, so the caller announces each request it
// forwards with expect_response_to(method), in order (pipelining):
//
//   - a response to HEAD, a 204, a 304 and every 1xx have no body, whatever their
//     headers say;
//   - a 1xx other than 101 is informational: ResponseHeadEvent{informational = true}
//     and nothing else; the request still waits for its final response;
//   - a 101, or a 2xx to CONNECT, switches protocols: ResponseHeadEvent then
//     ResponseUpgradeEvent (in place of ResponseCompleteEvent); every byte after the
//     consumed count is tunnel data and feed() consumes nothing more. The caller tunnels
//     only if its request asked to upgrade;
//   - otherwise the body is framed by chunked encoding, Content-Length, or the end of the
//     connection: finish() at upstream EOF completes it.
//
// A final response pops its request: ResponseHeadEvent, ResponseBodyEvent{bytes[, data]}
// (the decoded body, in any split), ResponseCompleteEvent.
//
// Refused (ResponseErrorEvent, then the parser stays failed): a response with no request
// waiting for it (unexpected_response); malformed syntax or a status outside 100..599
// (bad_response); the smuggling shapes Content-Length with Transfer-Encoding
// (smuggling_cl_te) and two Content-Length fields (duplicate_content_length); a bad
// Content-Length (bad_content_length); Transfer-Encoding twice or in a form llhttp
// refuses (bad_transfer_encoding); obs-fold (obs_fold); a bad chunk-size line
// (bad_chunk_size); a version other than HTTP/1.0 or 1.1 (bad_version); the caps of
// ParserLimits (header_too_large, too_many_headers); EOF inside a message (truncated).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/http/message.hpp"

namespace airlock::http {

struct ResponseHeadEvent {
  ResponseHead head;
  bool informational = false;  // 1xx other than 101: the final response is still to come
};
struct ResponseBodyEvent {
  std::size_t bytes = 0;
  std::vector<std::uint8_t> data;  // the decoded bytes, when the parser keeps bodies
};
struct ResponseCompleteEvent {};
struct ResponseUpgradeEvent {};
struct ResponseErrorEvent {
  std::string reason;
};

using ResponseEvent = std::variant<ResponseHeadEvent, ResponseBodyEvent, ResponseCompleteEvent,
                                   ResponseUpgradeEvent, ResponseErrorEvent>;

class ResponseParser {
 public:
  using Limits = ParserLimits;

  struct Options {
    // Body events carry the decoded bytes (chunk framing removed), for a caller that
    // re-frames the body; otherwise only their count.
    bool keep_body = false;
    // feed() returns right after a final response completes, so the caller can tell
    // which bytes belong to which response.
    bool stop_after_message = false;
  };

  ResponseParser() : ResponseParser(Limits{}, Options{}) {}
  explicit ResponseParser(const Limits& limits) : ResponseParser(limits, Options{}) {}
  ResponseParser(const Limits& limits, Options options);
  ~ResponseParser();
  ResponseParser(ResponseParser&&) noexcept;
  ResponseParser& operator=(ResponseParser&&) noexcept;

  // Announces one request forwarded upstream (its method, e.g. "HEAD"), in send order.
  void expect_response_to(std::string_view method);

  // Parses from the start of data and appends events; returns the bytes consumed (all of
  // them, unless an upgrade or an error stopped it).
  std::size_t feed(std::span<const std::uint8_t> data, std::vector<ResponseEvent>& out);

  // The upstream closed its side: completes a body that runs until EOF, or reports
  // "truncated" for a response cut short. Nothing happens between responses.
  void finish(std::vector<ResponseEvent>& out);

  // Requests announced and not yet answered by a final response.
  std::size_t pending() const;
  bool failed() const;
  bool upgraded() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::http
