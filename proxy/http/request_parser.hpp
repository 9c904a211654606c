// RequestParser: the guest's HTTP/1.x requests, incrementally from arbitrary chunks
// (sans-IO, over llhttp in strict mode).
//
// Theory of operation. The guest is untrusted and its requests are re-serialised toward
// the upstream from the parsed head, with the body re-framed, so the parser has to agree
// with itself only: every message boundary is decided here, once, and any request whose
// framing could be read two ways is refused rather than guessed at. feed() consumes bytes
// and appends events in order:
//
//   RequestHeadEvent      the head is complete. feed() returns right after it, so the
//                         caller judges the request before any body byte is parsed, then
//                         calls feed() again with the bytes not consumed. A request
//                         without a body gets its MessageCompleteEvent (or UpgradeEvent)
//                         in the same call, since no body byte is involved.
//   BodyEvent             decoded body bytes (chunk framing removed), in any split
//   MessageCompleteEvent  the request ended; the next one may follow (pipelining)
//   UpgradeEvent          the request asked to switch protocols (Upgrade with
//                         Connection: upgrade, or CONNECT) and ended, body included; it
//                         takes the place of MessageCompleteEvent. Every byte after the
//                         consumed count is tunnel data: feed() consumes nothing more. If
//                         the upstream refuses the upgrade the connection can carry no
//                         further request and the caller closes it after the response.
//   ParseErrorEvent       refused, with a stable reason code (below); the parser stays
//                         failed and consumes nothing more.
//
// Refused (reason): malformed syntax, unknown methods, CTLs in names or values, bytes
// after a request with Connection: close (bad_request); head over max_head_bytes
// (header_too_large); more than max_headers fields (too_many_headers); Content-Length
// with Transfer-Encoding (smuggling_cl_te); two Content-Length fields, even equal
// (duplicate_content_length); a Content-Length that is not plain digits or overflows
// (bad_content_length); obs-fold (obs_fold); a bad chunk-size line or chunk data not
// followed by CRLF (bad_chunk_size); Transfer-Encoding other than exactly "chunked", in
// any case and surrounding whitespace, or twice (bad_transfer_encoding); HTTP/1.1
// without Host (missing_host) or with two (duplicate_host); a version other than HTTP/1.0
// or 1.1, including the HTTP/2 preface (bad_version).
//
// Trailer fields after a chunked body are parsed (and capped like a head) but dropped:
// the re-framed request toward the upstream ends with an empty last chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "proxy/http/message.hpp"

namespace airlock::http {

struct RequestHeadEvent {
  RequestHead head;
};
struct BodyEvent {
  std::vector<std::uint8_t> data;
};
struct MessageCompleteEvent {};
struct UpgradeEvent {};
struct ParseErrorEvent {
  std::string reason;
};

using RequestEvent =
    std::variant<RequestHeadEvent, BodyEvent, MessageCompleteEvent, UpgradeEvent, ParseErrorEvent>;

class RequestParser {
 public:
  using Limits = ParserLimits;

  explicit RequestParser(const Limits& limits = Limits{});
  ~RequestParser();
  RequestParser(RequestParser&&) noexcept;
  RequestParser& operator=(RequestParser&&) noexcept;

  // Parses from the start of data and appends events; returns the bytes consumed. Stops
  // early after a head, an upgrade or an error (see above).
  std::size_t feed(std::span<const std::uint8_t> data, std::vector<RequestEvent>& out);

  bool failed() const;
  bool upgraded() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::http
