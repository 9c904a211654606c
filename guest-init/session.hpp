// One request in flight on one channel, as seen by the control loop.
//
// The control loop owns a map channel -> Session and is the only place that waits: each
// turn it asks every session which fds it wants polled (PollSet), whether it has work
// that needs no fd (a file being streamed), and when its next deadline is (an exec
// timeout). Sessions never block and never write to the port; they talk through the
// Outbox. A finished() session is dropped, after which frames for its channel are
// ignored (the host may still be sending the tail of a stream it started).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

#include "guest-init/outbox.hpp"
#include "protocol/frame.hpp"

namespace airlock::guest {

using Clock = std::chrono::steady_clock;

class FileWatch;

// Collects (fd, events, handler) for one poll(2) round.
struct PollSet {
  struct Entry {
    int fd;
    short events;
    std::function<void(short revents)> handler;
  };
  std::vector<Entry> entries;
  void add(int fd, short events, std::function<void(short)> handler) {
    entries.push_back({fd, events, std::move(handler)});
  }
};

// What a session may use: the queue to the host and the workspace watcher (to report
// host-initiated changes the watcher cannot see).
struct SessionContext {
  Outbox& outbox;
  FileWatch* watch;
};

class Session {
 public:
  virtual ~Session() = default;
  // A frame on this session's channel after the request that created it.
  virtual void on_frame(const protocol::Frame& frame) = 0;
  virtual void add_polls(PollSet& /*polls*/) {}
  // True when the session can make progress without waiting (the loop won't sleep).
  virtual bool has_work() const { return false; }
  virtual void work() {}
  virtual std::optional<Clock::time_point> deadline() const { return std::nullopt; }
  virtual void on_time(Clock::time_point /*now*/) {}
  // The pid whose wait status this session wants (-1: none).
  virtual pid_t pid() const { return -1; }
  virtual void on_reaped(int /*wait_status*/) {}
  // Ends the session without reply (link lost or shutdown): kill, close, unlink.
  virtual void abort() {}
  virtual bool finished() const = 0;
  // While true the loop stops reading the control port (stdin back-pressure).
  virtual bool blocks_input() const { return false; }
};

}  // namespace airlock::guest
