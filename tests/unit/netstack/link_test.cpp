#include <doctest/doctest.h>

#include "proxy/netstack/link.hpp"

using namespace airlock::netstack;

namespace {

std::vector<std::uint8_t> frame_of(std::size_t n, std::uint8_t fill) { return std::vector<std::uint8_t>(n, fill); }

}  // namespace

TEST_CASE("link codec round-trips frames fed one byte at a time") {
  std::vector<std::uint8_t> stream;
  append_link_frame(stream, frame_of(14, 1));
  append_link_frame(stream, frame_of(1514, 2));
  append_link_frame(stream, frame_of(65535 + 14, 3));
  LinkDecoder decoder;
  std::vector<std::vector<std::uint8_t>> frames;
  for (const auto b : stream) {
    REQUIRE(decoder.feed(std::span(&b, 1)));
    while (auto f = decoder.next()) frames.push_back(std::move(*f));
  }
  REQUIRE(frames.size() == 3);
  CHECK(frames[0] == frame_of(14, 1));
  CHECK(frames[1] == frame_of(1514, 2));
  CHECK(frames[2] == frame_of(65535 + 14, 3));
  CHECK(decoder.buffered() == 0);
}

TEST_CASE("link codec fails on lengths 0 - below an Ethernet header - or above the max") {
  for (const std::uint32_t length : {0U, 1U, 13U, 65535U + 15U, 0xffffffffU}) {
    LinkDecoder decoder;
    const std::uint8_t header[4] = {static_cast<std::uint8_t>(length >> 24), static_cast<std::uint8_t>(length >> 16),
                                    static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length)};
    CHECK_FALSE(decoder.feed(header));
    CHECK(decoder.failed());
    CHECK_FALSE(decoder.next());
    const std::uint8_t more[1] = {0};
    CHECK_FALSE(decoder.feed(more));  // stays failed
  }
}

TEST_CASE("link codec waits for a partial frame") {
  std::vector<std::uint8_t> stream;
  append_link_frame(stream, frame_of(100, 9));
  LinkDecoder decoder;
  REQUIRE(decoder.feed(std::span(stream).first(50)));
  CHECK_FALSE(decoder.next());
  REQUIRE(decoder.feed(std::span(stream).subspan(50)));
  CHECK(decoder.next() == frame_of(100, 9));
}
