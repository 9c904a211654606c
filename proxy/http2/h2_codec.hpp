// HTTP/2 connection codecs over nghttp2 (sans-IO: nghttp2_session_mem_recv/mem_send):
// the guest's server end (H2GuestCodec) and the origin's client end (H2UpstreamCodec),
// speaking codec.hpp's vocabulary so the MITM's HTTP layer treats an HTTP/2 stream like
// an HTTP/1.1 exchange.
//
// Theory of operation. nghttp2 does the framing, HPACK, stream states, flow-control
// accounting and the protocol's own checks (header field validity, content-length against
// DATA, pseudo-header rules); its callbacks become events here. A request's pseudo-
// headers map onto RequestHead: :method, :path as the target, :authority as the Host
// header (a separate host field is dropped in its favour), version 2. Responses map
// :status. Headers going out are lower-cased and lose HTTP/1.1's connection-specific
// fields (Connection, Keep-Alive, Transfer-Encoding, Upgrade, TE other than "trailers").
//
// Flow control. Automatic WINDOW_UPDATEs are off: received body bytes are credited back
// to the peer only when the layer calls consumed(), so a guest (or origin) can't have us
// buffer more than our windows (kInitialWindow per stream, kConnectionWindow in all).
// Bodies going out are queued per stream and handed to nghttp2 as its flow control
// allows; a stream with nothing queued is deferred and resumed when data arrives.
//
// Refusals. A broken preface, bad frames, flow-control violations, a header list over
// kMaxHeaderBytes, or too many streams reset in a short time (the "rapid reset" flood)
// end the connection with GOAWAY and ConnectionFailed{h2_protocol_error, what nghttp2
// said}; a bad stream is reset alone (StreamCancelled). At most kMaxConcurrentStreams
// guest streams are open at once.
// Pure: no I/O.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "proxy/http/codec.hpp"

struct nghttp2_session;

namespace airlock::http2 {

using http::Bytes;
using http::StreamId;

inline constexpr std::uint32_t kMaxConcurrentStreams = 100;
inline constexpr std::uint32_t kInitialWindow = 1u << 20;      // per stream
inline constexpr std::uint32_t kConnectionWindow = 16u << 20;  // all streams together
inline constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

namespace detail {
class Session;
}

class H2GuestCodec final : public http::GuestCodec {
 public:
  H2GuestCodec();
  ~H2GuestCodec() override;

  std::string_view protocol() const override { return "HTTP/2"; }
  void feed(std::span<const std::uint8_t> bytes, std::vector<http::GuestEvent>& out) override;
  void eof(std::vector<http::GuestEvent>& out) override;
  void respond_informational(StreamId stream, const http::ResponseHead& head) override;
  void respond(StreamId stream, http::ResponseHead head, http::BodyFraming framing, bool end_stream) override;
  void respond_data(StreamId stream, std::span<const std::uint8_t> data) override;
  void respond_end(StreamId stream, const http::Trailers& trailers) override;
  void respond_wire(StreamId, std::span<const std::uint8_t>) override {}  // HTTP/1.1 only
  void cancel(StreamId stream) override;
  void finish(StreamId last) override;
  void consumed(StreamId stream, std::size_t bytes) override;
  Bytes take_output() override;
  bool has_output() const override;
  bool wants_close() const override;
  bool wants_reset() const override { return false; }
  Bytes take_tunnel_bytes() override { return {}; }
  std::size_t buffered() const override { return 0; }

 private:
  std::unique_ptr<detail::Session> session_;
};

class H2UpstreamCodec final : public http::UpstreamCodec {
 public:
  H2UpstreamCodec();
  ~H2UpstreamCodec() override;

  std::string_view protocol() const override { return "HTTP/2"; }
  bool can_start() const override;
  StreamId request(const http::RequestHead& head, http::BodyFraming framing, bool end_stream) override;
  void request_data(StreamId stream, std::span<const std::uint8_t> data) override;
  void request_end(StreamId stream) override;
  void cancel(StreamId stream) override;
  void consumed(StreamId stream, std::size_t bytes) override;
  void feed(std::span<const std::uint8_t> bytes, std::vector<http::UpstreamEvent>& out) override;
  void eof(std::vector<http::UpstreamEvent>& out) override;
  Bytes take_output() override;
  bool has_output() const override;
  std::size_t open_streams() const override;
  bool exhausted() const override;
  Bytes take_tunnel_bytes() override { return {}; }
  std::size_t buffered() const override { return 0; }

 private:
  std::unique_ptr<detail::Session> session_;
};

// The standard reason phrase of a status, for an HTTP/1.1 peer ("OK", "Not Found").
std::string_view reason_phrase(int status);

}  // namespace airlock::http2
