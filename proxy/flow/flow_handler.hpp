// The seam between whatever carries one guest connection and whatever serves it.
//
// A guest connection is a TCP flow the netstack terminated (proxy/guest's engine) or a
// client of the standalone proxy (proxy/standalone); either way its handler - the MITM's
// FlowDriver, or the DNS-over-TCP handler - sees it only as a GuestFlow and hears about
// it only through its on_* calls, made from the io_context thread. After on_closed() the
// GuestFlow is gone: the handler must not touch it again, and lets go of its own
// resources (sockets, timers) soon.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace airlock::flow {

// The guest's end of one accepted connection.
class GuestFlow {
 public:
  virtual ~GuestFlow() = default;
  // Bytes the guest sent, up to max; empty when none are buffered.
  virtual std::vector<std::uint8_t> read(std::size_t max) = 0;
  // Offers bytes for the guest; returns how many were taken. A short count means "full":
  // on_writable() follows when space frees.
  virtual std::size_t send(std::span<const std::uint8_t> bytes) = 0;
  // FIN to the guest once everything sent so far is delivered.
  virtual void shutdown_write() = 0;
  // RST to the guest; on_closed() follows.
  virtual void abort() = 0;
  // The way to the guest is backed up (the guest link's queue is over its high-water
  // mark): stop producing until on_writable().
  virtual bool congested() const = 0;
  // The guest has sent FIN (read() still drains what came before it).
  virtual bool read_closed() const = 0;
};

// How a connection ended, for its closing record.
struct CloseInfo {
  std::string_view reason;       // closed, reset_by_guest, aborted, idle_timeout, ...
  std::uint64_t bytes_in = 0;    // guest -> us, payload accepted
  std::uint64_t bytes_out = 0;   // us -> guest, payload delivered
};

class FlowHandler {
 public:
  enum class Close : std::uint8_t {
    graceful,  // both sides finished (FIN/FIN): queued upstream bytes still go out
    abortive,  // reset, timeout or teardown: drop everything, RST upstream
  };

  virtual ~FlowHandler() = default;
  // The connection is accepted; start moving bytes.
  virtual void start(GuestFlow& guest) = 0;
  virtual void on_readable() = 0;     // guest bytes are waiting in read()
  virtual void on_writable() = 0;     // send() has room again, or the way decongested
  virtual void on_read_closed() = 0;  // the guest sent FIN
  virtual void on_closed(Close how, const CloseInfo& info) = 0;
};

}  // namespace airlock::flow
