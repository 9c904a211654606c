// HTTP/1.1 connection codecs: the guest's server end (H1GuestCodec) and the origin's
// client end (H1UpstreamCodec), over RequestParser / ResponseParser (see codec.hpp for
// the vocabulary).
//
// Theory of operation, guest side. Requests are parsed in order (pipelining allowed);
// each gets the next stream id. Responses must go back in the same order, so answers for
// a stream behind an unfinished one wait in that stream's buffer and are written when its
// turn comes. A response head is written with framing rebuilt from BodyFraming: a known
// length becomes Content-Length, an unknown one chunked encoding (or, to an HTTP/1.0
// client, the end of the connection). Pass-through responses (respond_wire) are the
// origin's bytes as they came. After a request with "Connection: close", a parse error,
// a response that closes, or finish(), the connection ends once the last response is out
// (wants_close). A bare HTTP/2 connection preface, where HTTP/1.1 was negotiated or no
// TLS at all, is refused as http2_preface. cancel() can't end one exchange on HTTP/1.1:
// the connection is reset (wants_reset).
//
// Upstream side. Each request head is re-serialised from the parsed fields (framing per
// BodyFraming); a request's body must end before the next request starts (can_start).
// Responses are matched to requests in order. In pass-through mode (`wire`) the codec
// also hands out the origin's bytes verbatim (ResponseWire), one response's bytes at a
// time, before that response's ResponseEnd; otherwise bodies come decoded of chunking.
// Pure: no I/O.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "proxy/http/codec.hpp"
#include "proxy/http/request_parser.hpp"
#include "proxy/http/response_parser.hpp"

namespace airlock::http {

class H1GuestCodec final : public GuestCodec {
 public:
  explicit H1GuestCodec(const ParserLimits& limits = {});

  std::string_view protocol() const override { return "HTTP/1.1"; }
  void feed(std::span<const std::uint8_t> bytes, std::vector<GuestEvent>& out) override;
  void eof(std::vector<GuestEvent>& out) override;
  void respond_informational(StreamId stream, const ResponseHead& head) override;
  void respond(StreamId stream, ResponseHead head, BodyFraming framing, bool end_stream) override;
  void respond_data(StreamId stream, std::span<const std::uint8_t> data) override;
  void respond_end(StreamId stream, const Trailers& trailers) override;
  void respond_wire(StreamId stream, std::span<const std::uint8_t> bytes) override;
  void cancel(StreamId stream) override;
  void finish(StreamId last) override;
  void consumed(StreamId, std::size_t) override {}
  Bytes take_output() override;
  bool has_output() const override { return !out_.empty(); }
  bool wants_close() const override;
  bool wants_reset() const override { return reset_; }
  Bytes take_tunnel_bytes() override;
  std::size_t buffered() const override { return pending_.size(); }

 private:
  struct Stream {
    StreamId id = 0;
    int version_minor = 1;
    bool request_close = false;  // the request said Connection: close
    bool head_done = false;
    bool chunked = false;
    bool close_delimited = false;  // HTTP/1.0 client, unknown length
    bool wire = false;
    bool done = false;
    bool request_ended = false;  // its RequestEnd (or end_stream) went out
    Bytes held;                  // output waiting for the streams ahead of it
  };
  Stream* find(StreamId id);
  Stream& new_stream();
  Bytes& sink(Stream& s);
  void flush_ready();
  void append(Stream& s, std::string_view text);

  RequestParser parser_;
  Bytes pending_;              // guest bytes not yet parsed
  Bytes tunnel_;
  bool checked_preface_ = false;
  bool stopped_ = false;       // parse error, upgrade or close: nothing more is parsed
  bool close_after_ = false;   // close once every response is out
  bool reset_ = false;
  bool in_request_ = false;
  StreamId next_ = 1;
  std::deque<Stream> streams_;  // not yet completely written, oldest first
  Bytes out_;
};

class H1UpstreamCodec final : public UpstreamCodec {
 public:
  H1UpstreamCodec(bool wire, const ParserLimits& limits = {});

  std::string_view protocol() const override { return "HTTP/1.1"; }
  bool can_start() const override;
  StreamId request(const RequestHead& head, BodyFraming framing, bool end_stream) override;
  void request_data(StreamId stream, std::span<const std::uint8_t> data) override;
  void request_end(StreamId stream) override;
  void cancel(StreamId stream) override;
  void consumed(StreamId, std::size_t) override {}
  void feed(std::span<const std::uint8_t> bytes, std::vector<UpstreamEvent>& out) override;
  void eof(std::vector<UpstreamEvent>& out) override;
  Bytes take_output() override;
  bool has_output() const override { return !out_.empty(); }
  std::size_t open_streams() const override { return waiting_.size(); }
  bool exhausted() const override { return exhausted_; }
  Bytes take_tunnel_bytes() override;
  std::size_t buffered() const override { return 0; }

 private:
  void translate(std::vector<ResponseEvent>& events, std::span<const std::uint8_t> wire,
                 std::vector<UpstreamEvent>& out);

  bool wire_;
  ResponseParser parser_;
  std::deque<StreamId> waiting_;  // requests sent, responses not complete, in order
  std::optional<StreamId> writing_;  // the request whose body is still being sent
  bool writing_chunked_ = false;
  bool failed_ = false;
  bool exhausted_ = false;
  StreamId next_ = 1;
  Bytes out_;
  Bytes tunnel_;
};

}  // namespace airlock::http
