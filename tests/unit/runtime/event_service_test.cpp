// The audit event service: gap-free seq across reopenings, batches from memory and from
// the file by index, and subscribers that see every event after a replay.
#include <doctest/doctest.h>

#include <fstream>

#include "runtime/vm/event_service.hpp"
#include "tests/support/temp_dir.hpp"

using namespace airlock::runtime;

namespace {

nlohmann::json body(int i) { return {{"type", "exec"}, {"exec", {{"command", "n" + std::to_string(i)}}}}; }

std::uint64_t seq_of(const std::string& line) { return nlohmann::json::parse(line)["seq"].get<std::uint64_t>(); }

}  // namespace

TEST_CASE("events: recent batches come from memory, in order and bounded") {
  airlock::test::TempDir dir;
  EventService events;
  REQUIRE(events.open(dir.path() / "events.jsonl", "vm-00000001"));
  for (int i = 0; i < 10; ++i) REQUIRE_FALSE(events.append(body(i), 1000 + i).empty());
  CHECK(events.last_seq() == 10);
  auto all = events.read_from(0, 1 << 20);
  REQUIRE(all.lines.size() == 10);
  CHECK(seq_of(all.lines.front()) == 1);
  CHECK(all.next_seq == 11);
  auto tail = events.read_from(8, 1 << 20);
  REQUIRE(tail.lines.size() == 3);
  CHECK(seq_of(tail.lines[0]) == 8);
  // A tiny budget still makes progress: one line per batch.
  auto one = events.read_from(3, 1);
  REQUIRE(one.lines.size() == 1);
  CHECK(one.next_seq == 4);
  CHECK(events.read_from(11, 1 << 20).lines.empty());
}

TEST_CASE("events: old events are read from the file at their offset, skipping torn lines") {
  airlock::test::TempDir dir;
  const auto file = dir.path() / "events.jsonl";
  const int total = static_cast<int>(EventService::kMemoryEvents) + 500;
  {
    EventService events;
    REQUIRE(events.open(file, "vm-00000001"));
    for (int i = 0; i < 100; ++i) events.append(body(i), i);
  }
  // A crash mid-write left a torn line; the next writer goes on after it.
  { std::ofstream(file, std::ios::app) << R"({"seq":101,"type":"ex)"; }
  EventService events;
  REQUIRE(events.open(file, "vm-00000001"));
  CHECK(events.last_seq() == 100);
  for (int i = 100; i < total; ++i) events.append(body(i), i);
  CHECK(events.last_seq() == static_cast<std::uint64_t>(total));
  // seq 50 .. is older than memory: served from the file, every line whole and in order.
  std::uint64_t next = 50;
  std::uint64_t expect = 50;
  for (int guard = 0; guard < 10000; ++guard) {
    auto batch = events.read_from(next, 64 * 1024);
    if (batch.lines.empty()) break;
    for (const auto& line : batch.lines) CHECK(seq_of(line) == expect++);
    next = batch.next_seq;
  }
  CHECK(expect == static_cast<std::uint64_t>(total) + 1);
}

TEST_CASE("events: subscribers get each new line; replay then subscribe is gap-free") {
  airlock::test::TempDir dir;
  EventService events;
  REQUIRE(events.open(dir.path() / "events.jsonl", "vm-00000001"));
  for (int i = 0; i < 5; ++i) events.append(body(i), i);
  std::vector<std::uint64_t> seen;
  auto batch = events.read_from(0, 1 << 20);
  for (const auto& l : batch.lines) seen.push_back(seq_of(l));
  const auto id = events.subscribe([&](const std::string& line) { seen.push_back(seq_of(line)); });
  for (int i = 5; i < 8; ++i) events.append(body(i), i);
  events.unsubscribe(id);
  events.append(body(9), 9);
  CHECK(seen == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8});
  // A subscriber may remove itself from its own callback.
  EventService::SubscriberId self = 0;
  int calls = 0;
  self = events.subscribe([&](const std::string&) {
    ++calls;
    events.unsubscribe(self);
  });
  events.append(body(10), 10);
  events.append(body(11), 11);
  CHECK(calls == 1);
  CHECK(events.subscribers() == 0);
}
