// Frame codec: round trips under every chunking, and refusal of malformed streams.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "protocol/frame.hpp"

using namespace airlock::protocol;

namespace {

std::vector<Frame> sample_frames() {
  return {
      {FrameType::control, 0, R"({"op":"hello","version":1})"},
      {FrameType::stdin_data, 7, ""},
      {FrameType::stdout_data, 0xffffffffU, std::string(1000, 'x')},
      {FrameType::stderr_data, 3, std::string("\0\1\2", 3)},
      {FrameType::file_data, 42, std::string(kMaxPayload, 'z')},
  };
}

std::string encode_all(const std::vector<Frame>& frames) {
  std::string out;
  for (const auto& f : frames) append_frame(out, f.type, f.channel, f.payload);
  return out;
}

void expect_same(const std::vector<Frame>& got, const std::vector<Frame>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].type == want[i].type);
    CHECK(got[i].channel == want[i].channel);
    CHECK(got[i].payload == want[i].payload);
  }
}

}  // namespace

TEST_CASE("encode_frame writes the documented header") {
  const std::string bytes = encode_frame(FrameType::stdout_data, 0x01020304U, "ab");
  REQUIRE(bytes.size() == kHeaderSize + 2);
  CHECK(bytes == std::string("\x00\x00\x00\x07\x03\x01\x02\x03\x04" "ab", 11));
}

TEST_CASE("append_frame refuses an oversize payload") {
  std::string out;
  CHECK_THROWS(append_frame(out, FrameType::file_data, 1, std::string(kMaxPayload + 1, 'a')));
}

TEST_CASE("decoder round-trips frames fed whole") {
  const auto frames = sample_frames();
  FrameDecoder decoder;
  REQUIRE(decoder.feed(encode_all(frames)));
  std::vector<Frame> got;
  while (auto f = decoder.next()) got.push_back(*f);
  expect_same(got, frames);
  CHECK(decoder.buffered() == 0);
  CHECK_FALSE(decoder.failed());
}

TEST_CASE("decoder round-trips frames under random chunking") {
  const auto frames = sample_frames();
  const std::string bytes = encode_all(frames);
  std::mt19937 rng(1234);
  for (int round = 0; round < 50; ++round) {
    FrameDecoder decoder;
    std::vector<Frame> got;
    std::size_t at = 0;
    while (at < bytes.size()) {
      const std::size_t max_chunk = round % 2 == 0 ? 16 : 70000;
      const std::size_t n = std::min(bytes.size() - at, std::uniform_int_distribution<std::size_t>(1, max_chunk)(rng));
      REQUIRE(decoder.feed(std::string_view(bytes).substr(at, n)));
      at += n;
      while (auto f = decoder.next()) got.push_back(*f);
    }
    expect_same(got, frames);
  }
}

TEST_CASE("decoder waits for a complete frame") {
  const std::string bytes = encode_frame(FrameType::control, 1, "{}");
  FrameDecoder decoder;
  REQUIRE(decoder.feed(std::string_view(bytes).substr(0, kHeaderSize)));
  CHECK_FALSE(decoder.next().has_value());
  REQUIRE(decoder.feed(std::string_view(bytes).substr(kHeaderSize)));
  CHECK(decoder.next().has_value());
}

TEST_CASE("decoder fails on a length below the header") {
  FrameDecoder decoder;
  CHECK_FALSE(decoder.feed(std::string("\x00\x00\x00\x04\x01\x00\x00\x00\x00", 9)));
  CHECK(decoder.failed());
  CHECK_FALSE(decoder.next().has_value());
  CHECK_FALSE(decoder.error().empty());
}

TEST_CASE("decoder fails on an oversize length before the payload arrives") {
  FrameDecoder decoder;
  const std::uint32_t length = static_cast<std::uint32_t>(kMaxPayload + 6);
  std::string header;
  header.push_back(static_cast<char>(length >> 24));
  header.push_back(static_cast<char>((length >> 16) & 0xff));
  header.push_back(static_cast<char>((length >> 8) & 0xff));
  header.push_back(static_cast<char>(length & 0xff));
  header += std::string("\x05\x00\x00\x00\x01", 5);
  CHECK_FALSE(decoder.feed(header));
  CHECK(decoder.failed());
}

TEST_CASE("the largest legal frame is accepted") {
  FrameDecoder decoder;
  REQUIRE(decoder.feed(encode_frame(FrameType::file_data, 9, std::string(kMaxPayload, 'q'))));
  auto f = decoder.next();
  REQUIRE(f.has_value());
  CHECK(f->payload.size() == kMaxPayload);
}

TEST_CASE("decoder fails on unknown frame types") {
  for (int type : {0, 6, 255}) {
    FrameDecoder decoder;
    std::string bytes("\x00\x00\x00\x05", 4);
    bytes.push_back(static_cast<char>(type));
    bytes += std::string("\x00\x00\x00\x01", 4);
    decoder.feed(bytes);
    CHECK_FALSE(decoder.next().has_value());
    CHECK(decoder.failed());
  }
}

TEST_CASE("a bad frame after good ones fails only when reached, and stays failed") {
  std::string bytes = encode_frame(FrameType::control, 1, "{}");
  bytes += std::string("\x00\x00\x00\x05\x09\x00\x00\x00\x01", 9);
  FrameDecoder decoder;
  decoder.feed(bytes);
  CHECK(decoder.next().has_value());
  CHECK_FALSE(decoder.next().has_value());
  CHECK(decoder.failed());
  CHECK_FALSE(decoder.feed(encode_frame(FrameType::control, 1, "{}")));
  CHECK_FALSE(decoder.next().has_value());
}
