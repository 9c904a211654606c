// EventQueue: order kept, drops reported where they happened, producers wait in block
// mode and are released by a drain or by close().
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "audit/queue.hpp"

using namespace airlock::audit;

namespace {

Event dns(std::string name) {
  DnsQuery q;
  q.name = std::move(name);
  return q;
}

std::string name_of(const Event& e) {
  if (auto* q = std::get_if<DnsQuery>(&e)) return q->name;
  if (auto* l = std::get_if<EventsLost>(&e)) return "lost:" + l->kind + ":" + std::to_string(l->count);
  return "?";
}

std::vector<std::string> names(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(name_of(e));
  return out;
}

}  // namespace

TEST_CASE("records come out in order; on_ready runs once per batch") {
  int ready = 0;
  EventQueue q(8, EventQueue::Overflow::kBlock, [&] { ++ready; });
  q.push(dns("a"));
  q.push(dns("b"));
  CHECK(ready == 1);
  CHECK(names(q.drain()) == std::vector<std::string>{"a", "b"});
  CHECK(q.drain().empty());
  q.push(dns("c"));
  CHECK(ready == 2);
  CHECK(q.stats().pushed == 3);
  CHECK(q.stats().high_water == 2);
}

TEST_CASE("drop mode: what does not fit becomes one events_lost per type, after the batch") {
  EventQueue q(2, EventQueue::Overflow::kDrop, nullptr);
  q.push(dns("a"));
  q.push(dns("b"));
  q.push(dns("c"));
  q.push(dns("d"));
  Flow flow;
  q.push(flow);
  CHECK(names(q.drain()) == std::vector<std::string>{"a", "b", "lost:dns:2", "lost:network:1"});
  CHECK(q.stats().dropped == 3);
  q.push(dns("e"));
  CHECK(names(q.drain()) == std::vector<std::string>{"e"});  // reported once
}

TEST_CASE("the events_lost record says why") {
  EventQueue q(1, EventQueue::Overflow::kDrop, nullptr);
  q.push(dns("a"));
  q.push(dns("b"));
  auto out = q.drain();
  REQUIRE(out.size() == 2);
  auto& lost = std::get<EventsLost>(out[1]);
  CHECK(lost.count == 1);
  CHECK(lost.kind == "dns");
  CHECK(lost.reason == "audit_queue_full");
}

TEST_CASE("block mode: a producer waits for the writer and nothing is lost") {
  std::atomic<int> ready{0};
  EventQueue q(4, EventQueue::Overflow::kBlock, [&] { ++ready; });
  std::atomic<int> produced{0};
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) {
      q.push(dns(std::to_string(i)));
      ++produced;
    }
  });
  std::vector<std::string> seen;
  while (seen.size() < 1000) {
    for (const Event& e : q.drain()) seen.push_back(name_of(e));
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  producer.join();
  REQUIRE(seen.size() == 1000);
  for (int i = 0; i < 1000; ++i) CHECK(seen[static_cast<std::size_t>(i)] == std::to_string(i));
  CHECK(q.stats().dropped == 0);
  CHECK(q.stats().waits > 0);
  CHECK(q.stats().high_water <= 4);
}

TEST_CASE("close releases a waiting producer and holds everything after it") {
  EventQueue q(1, EventQueue::Overflow::kBlock, nullptr);
  q.push(dns("a"));
  std::atomic<bool> done{false};
  std::thread producer([&] {
    q.push(dns("b"));  // waits: full
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(done.load());
  q.close();
  producer.join();
  CHECK(done.load());
  for (int i = 0; i < 10; ++i) q.push(dns("x"));  // no bound once closed
  CHECK(q.drain().size() == 12);
}
