// Fuzzes the HTTP/2 codecs with hostile frames: a guest's bytes into the server end (after
// a valid preface, so the fuzzer reaches the frames) and an origin's bytes into the
// client end, in chunks the input chooses. Nothing may crash; a broken connection must
// end as ConnectionFailed with GOAWAY queued, never an assert.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "proxy/http2/h2_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const bool client_side = data[0] & 1;
  const bool with_preface = data[0] & 2;
  const std::size_t chunk = 1 + data[1] % 128;
  std::span<const std::uint8_t> input(data + 2, size - 2);
  constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  if (client_side) {
    airlock::http2::H2UpstreamCodec codec;
    airlock::http::RequestHead head;
    head.method = "GET";
    head.target = "/";
    head.headers = {{"host", "api.test"}};
    const auto stream = codec.request(head, {false, std::nullopt}, true);
    codec.take_output();
    std::vector<airlock::http::UpstreamEvent> events;
    for (std::size_t at = 0; at < input.size(); at += chunk) {
      codec.feed(input.subspan(at, std::min(chunk, input.size() - at)), events);
      for (auto& e : events)
        if (auto* b = std::get_if<airlock::http::ResponseBody>(&e)) codec.consumed(stream, b->data.size());
      events.clear();
      codec.take_output();
    }
    codec.eof(events);
    return 0;
  }
  airlock::http2::H2GuestCodec codec;
  std::vector<airlock::http::GuestEvent> events;
  if (with_preface) {
    codec.feed(std::span(reinterpret_cast<const std::uint8_t*>(kPreface.data()), kPreface.size()), events);
    // An empty SETTINGS frame, as a client sends first.
    const std::uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    codec.feed(settings, events);
  }
  for (std::size_t at = 0; at < input.size(); at += chunk) {
    codec.feed(input.subspan(at, std::min(chunk, input.size() - at)), events);
    for (auto& e : events) {
      if (auto* start = std::get_if<airlock::http::RequestStart>(&e)) {
        airlock::http::ResponseHead head;
        head.status = 200;
        codec.respond(start->stream, head, {true, std::nullopt}, false);
        codec.respond_data(start->stream, std::span(reinterpret_cast<const std::uint8_t*>("ok"), 2));
        codec.respond_end(start->stream, {{"grpc-status", "0"}});
      } else if (auto* body = std::get_if<airlock::http::RequestBody>(&e)) {
        codec.consumed(body->stream, body->data.size());
      }
    }
    events.clear();
    codec.take_output();
  }
  codec.eof(events);
  return 0;
}
