// The guest's outbound frame queue: chunking, the cap, and partial writes.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include "guest-init/outbox.hpp"
#include "protocol/frame.hpp"

using namespace airlock::guest;
using namespace airlock::protocol;

TEST_CASE("data is split into frames of at most kMaxPayload") {
  Outbox out;
  out.data(FrameType::stdout_data, 3, std::string(kMaxPayload * 2 + 10, 'a'));
  out.data(FrameType::file_data, 3, {});
  int fds[2];
  REQUIRE(::pipe2(fds, O_NONBLOCK) == 0);
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  FrameDecoder decoder;
  std::vector<Frame> frames;
  char buffer[65536];
  while (!out.empty()) {
    REQUIRE(out.flush_to(fds[1]));
    while (true) {
      const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
      if (n <= 0) break;
      REQUIRE(decoder.feed(std::string_view(buffer, static_cast<std::size_t>(n))));
    }
    while (auto f = decoder.next()) frames.push_back(*f);
  }
  ::close(fds[0]);
  ::close(fds[1]);
  REQUIRE(frames.size() == 4);
  CHECK(frames[0].payload.size() == kMaxPayload);
  CHECK(frames[1].payload.size() == kMaxPayload);
  CHECK(frames[2].payload.size() == 10);
  CHECK(frames[3].type == FrameType::file_data);
  CHECK(frames[3].payload.empty());
}

TEST_CASE("over_cap reports back-pressure and clear resets") {
  Outbox out;
  CHECK_FALSE(out.over_cap());
  out.data(FrameType::stdout_data, 1, std::string(kOutboxCap, 'x'));
  CHECK(out.over_cap());
  out.clear();
  CHECK(out.empty());
}

TEST_CASE("a hard write error is reported") {
  Outbox out;
  out.control(1, R"({"op":"ok"})");
  CHECK_FALSE(out.flush_to(-1));
}
