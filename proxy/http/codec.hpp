// The vocabulary between an HTTP connection codec and the MITM's HTTP layer.
//
// A codec turns one connection's bytes into message events and the layer's answers back
// into bytes, for one side: a GuestCodec is the server end the guest talks to, an
// UpstreamCodec the client end toward the origin. HTTP/1.1 and HTTP/2 each have both
// (h1_codec.hpp, proxy/http2/h2_codec.hpp), so the layer above judges, rewrites and
// records a request the same way whichever protocols the two sides speak, and an HTTP/2
// guest can reach an HTTP/1.1-only origin.
//
// Streams. Every request is a stream with an id the codec picks (HTTP/2's own stream id;
// on HTTP/1.1 a counter, in order on the connection). Body bytes in events are the
// message body with transfer framing removed (de-chunked, HTTP/2 DATA payloads); content
// codings (gzip...) are left to the layer. Heads arrive before any body byte, so the
// layer can judge first.
//
// Flow control. A codec takes every byte it is fed (HTTP/2's windows, and on HTTP/1.1 the
// caller's reading pace, bound what a peer can send); `pending_body()` and consumed()
// let the layer hold a peer back: an HTTP/2 codec returns window credit only for body
// bytes the layer says it has passed on.
//
// No codec throws on peer input: a protocol error becomes an event with a stable reason,
// and the codec queues what the protocol asks for (HTTP/2 GOAWAY, HTTP/1.1 nothing).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "proxy/http/message.hpp"

namespace airlock::http {

using StreamId = std::uint32_t;
using Bytes = std::vector<std::uint8_t>;
using Trailers = std::vector<Header>;

// ---- guest side (the codec serves requests) ---------------------------------------------

struct RequestStart {
  StreamId stream = 0;
  RequestHead head;
  bool end_stream = false;  // no body follows
};
struct RequestBody {
  StreamId stream = 0;
  Bytes data;
};
struct RequestEnd {
  StreamId stream = 0;
};
// HTTP/1.1: the request asked to switch protocols and its body ended; the bytes after it
// wait in the codec (take_tunnel_bytes) until the layer knows the upstream's answer.
struct RequestUpgrade {
  StreamId stream = 0;
};
// The guest cancelled one stream (HTTP/2 RST_STREAM).
struct StreamCancelled {
  StreamId stream = 0;
  std::string reason;
};
// The connection can't go on (framing error, GOAWAY with an error, preface missing).
// Streams without their end are over. On a guest HTTP/1.1 connection `stream` is where
// the layer may still answer (a 400), in order after the responses ahead of it.
struct ConnectionFailed {
  std::string reason;
  std::string detail;
  StreamId stream = 0;
};
using GuestEvent =
    std::variant<RequestStart, RequestBody, RequestEnd, RequestUpgrade, StreamCancelled, ConnectionFailed>;

// How a response's body is framed toward the guest.
struct BodyFraming {
  bool has_body = true;                  // false: HEAD, 1xx, 204, 304
  std::optional<std::uint64_t> length;   // known length, else streamed (chunked / DATA)
};

class GuestCodec {
 public:
  virtual ~GuestCodec() = default;
  virtual std::string_view protocol() const = 0;  // "HTTP/1.1", "HTTP/2"

  // Parses guest bytes; appends events in order.
  virtual void feed(std::span<const std::uint8_t> bytes, std::vector<GuestEvent>& out) = 0;
  // The guest closed its side: a request cut short becomes ConnectionFailed{truncated}.
  virtual void eof(std::vector<GuestEvent>& out) = 0;

  // A 1xx (100 Continue, 103) ahead of the final response.
  virtual void respond_informational(StreamId stream, const ResponseHead& head) = 0;
  // The final response head. The codec rewrites framing headers (Content-Length,
  // Transfer-Encoding, Connection) from `framing`; `end_stream` when no body follows.
  virtual void respond(StreamId stream, ResponseHead head, BodyFraming framing, bool end_stream) = 0;
  virtual void respond_data(StreamId stream, std::span<const std::uint8_t> data) = 0;
  virtual void respond_end(StreamId stream, const Trailers& trailers) = 0;
  // HTTP/1.1 pass-through: bytes of the upstream's response, forwarded as they came.
  virtual void respond_wire(StreamId stream, std::span<const std::uint8_t> bytes) = 0;
  // Ends one stream abnormally: HTTP/2 RST_STREAM; HTTP/1.1 can only reset the connection
  // (wants_reset()).
  virtual void cancel(StreamId stream) = 0;
  // No request after `last` will be answered: HTTP/2 GOAWAY; HTTP/1.1 stops reading,
  // forgets later requests, and closes after `last`'s response.
  virtual void finish(StreamId last) = 0;
  // Body bytes the layer has passed on (window credit on HTTP/2).
  virtual void consumed(StreamId stream, std::size_t bytes) = 0;

  virtual Bytes take_output() = 0;
  virtual bool has_output() const = 0;
  // Every response written and the connection should close now (graceful).
  virtual bool wants_close() const = 0;
  // The connection must be reset (a response can't be completed on HTTP/1.1).
  virtual bool wants_reset() const = 0;
  // HTTP/1.1 after RequestUpgrade: the bytes that followed the request.
  virtual Bytes take_tunnel_bytes() = 0;
  // Bytes parsed from the guest and not yet handed out; the driver stops reading above
  // a cap.
  virtual std::size_t buffered() const = 0;
};

// ---- upstream side (the codec sends requests) -------------------------------------------

struct ResponseStart {
  StreamId stream = 0;
  ResponseHead head;
  bool informational = false;  // 1xx other than 101: the final response follows
  bool end_stream = false;
};
struct ResponseBody {
  StreamId stream = 0;
  Bytes data;            // empty in pass-through mode (ResponseWire carries the bytes)
  std::size_t size = 0;  // body bytes this event stands for
};
struct ResponseEnd {
  StreamId stream = 0;
  Trailers trailers;
};
// HTTP/1.1 pass-through mode: the bytes just parsed, verbatim, after the events they
// carried (their head, body and end).
struct ResponseWire {
  StreamId stream = 0;
  Bytes bytes;
};
// 101 Switching Protocols: the bytes after it are the new protocol (take_tunnel_bytes).
struct ResponseUpgrade {
  StreamId stream = 0;
};
struct StreamRefused {  // the origin reset one stream (HTTP/2)
  StreamId stream = 0;
  std::string reason;
};
using UpstreamEvent = std::variant<ResponseStart, ResponseBody, ResponseEnd, ResponseWire,
                                   ResponseUpgrade, StreamRefused, ConnectionFailed>;

class UpstreamCodec {
 public:
  virtual ~UpstreamCodec() = default;
  virtual std::string_view protocol() const = 0;

  // Whether a new request may start now (HTTP/1.1: the previous request's body is out;
  // HTTP/2: under the peer's stream limit, no GOAWAY).
  virtual bool can_start() const = 0;
  // Starts a request; returns its stream id. `framing.length` is the body length to
  // announce when known; a streamed body is chunked on HTTP/1.1.
  virtual StreamId request(const RequestHead& head, BodyFraming framing, bool end_stream) = 0;
  virtual void request_data(StreamId stream, std::span<const std::uint8_t> data) = 0;
  virtual void request_end(StreamId stream) = 0;
  virtual void cancel(StreamId stream) = 0;
  virtual void consumed(StreamId stream, std::size_t bytes) = 0;

  virtual void feed(std::span<const std::uint8_t> bytes, std::vector<UpstreamEvent>& out) = 0;
  // The origin closed: completes a read-until-close body, or fails what is open.
  virtual void eof(std::vector<UpstreamEvent>& out) = 0;

  virtual Bytes take_output() = 0;
  virtual bool has_output() const = 0;
  // Requests sent and not yet answered in full.
  virtual std::size_t open_streams() const = 0;
  // The connection can carry no further request (Connection: close, GOAWAY, an upgrade).
  virtual bool exhausted() const = 0;
  virtual Bytes take_tunnel_bytes() = 0;
  virtual std::size_t buffered() const = 0;
};

}  // namespace airlock::http
