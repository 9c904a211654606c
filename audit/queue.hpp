// The bounded hand-off between the threads that produce audit events (the VM's network)
// and the one that writes them (the supervisor's loop).
//
// Theory of operation: push() never loses a record silently. When the queue is full,
// kBlock makes the producer wait until the writer has taken what waits (egress stalls,
// nothing is lost); kDrop counts the record by type and goes on. Drops only happen while
// the queue is full, and a full queue takes nothing until it is drained, so every record
// in a drained batch came before every drop since the last drain: drain() appends one
// events_lost {count, kind, reason: "audit_queue_full"} per type after the batch, exactly
// where the gap is. on_ready runs (on the producer's thread, outside the lock) when a
// record arrives and no drain is pending, so the writer is woken once per batch.
// close() ends the bound for shutdown: waiting producers go on and later pushes are held
// however many come, for the writer's last drain.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "audit/events.hpp"

namespace airlock::audit {

class EventQueue {
 public:
  enum class Overflow { kBlock, kDrop };

  struct Stats {
    std::uint64_t pushed = 0;       // records accepted
    std::uint64_t dropped = 0;      // records dropped (each reported in an events_lost)
    std::uint64_t waits = 0;        // times a producer waited for room (kBlock)
    std::uint64_t high_water = 0;   // most records held at once
  };

  EventQueue(std::size_t capacity, Overflow mode, std::function<void()> on_ready);
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // Any thread. May wait (kBlock) until the writer drains or close() is called.
  void push(Event event);
  // The writer: everything held, in order, then the events_lost records for what was
  // dropped since the last drain.
  std::vector<Event> drain();
  // No bound from now on; wakes every waiting producer.
  void close();

  Stats stats() const;
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  const Overflow mode_;
  const std::function<void()> on_ready_;
  mutable std::mutex mutex_;
  std::condition_variable room_;
  std::vector<Event> items_;
  std::map<std::string, std::uint64_t> lost_;  // by record type, since the last drain
  bool closed_ = false;
  bool ready_signalled_ = false;  // on_ready ran and no drain has happened since
  Stats stats_;
};

}  // namespace airlock::audit
