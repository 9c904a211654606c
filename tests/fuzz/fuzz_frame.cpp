// libFuzzer target for the control-channel frame codec and control message parsing.
//
// The input's first byte seeds the chunk sizes, the rest is the byte stream: it is fed
// to a FrameDecoder in pseudo-random chunks, every decoded frame is re-encoded and
// decoded again (it must come back identical), and CONTROL payloads go through
// parse_control and the typed getters. A second decoder fed the whole stream at once
// must produce the same frames: chunking must never change what is decoded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

using namespace airlock::protocol;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void touch_control(const Frame& frame) {
  if (frame.type != FrameType::control) return;
  auto message = parse_control(frame.payload);
  if (!message) return;
  (void)op_of(*message);
  for (const char* key : {"argv", "shell", "env", "path", "size", "mode", "signal", "rows", "tty"}) {
    (void)get_string(*message, key);
    (void)get_int(*message, key);
    (void)get_bool(*message, key);
    (void)get_string_array(*message, key);
    (void)get_object(*message, key);
  }
  (void)dump(*message);
}

void check_round_trip(const Frame& frame) {
  const std::string bytes = encode_frame(frame.type, frame.channel, frame.payload);
  FrameDecoder again;
  check(again.feed(bytes));
  auto copy = again.next();
  check(copy.has_value());
  check(copy->type == frame.type && copy->channel == frame.channel && copy->payload == frame.payload);
  check(!again.next().has_value() && again.buffered() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::uint32_t seed = data[0] * 2654435761U + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  FrameDecoder chunked;
  std::vector<Frame> frames;
  std::size_t at = 0;
  while (at < stream.size()) {
    seed = seed * 1103515245U + 12345U;
    const std::size_t n = std::min<std::size_t>(stream.size() - at, 1 + (seed >> 16) % 64);
    if (!chunked.feed(stream.substr(at, n))) break;
    at += n;
    while (auto frame = chunked.next()) {
      check(frame->payload.size() <= kMaxPayload);
      check_round_trip(*frame);
      touch_control(*frame);
      frames.push_back(std::move(*frame));
    }
    if (chunked.failed()) break;
  }

  FrameDecoder whole;
  std::vector<Frame> whole_frames;
  whole.feed(stream);
  while (auto frame = whole.next()) whole_frames.push_back(std::move(*frame));
  check(whole_frames.size() == frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) check(whole_frames[i].payload == frames[i].payload);
  check(whole.failed() == chunked.failed());
  return 0;
}
