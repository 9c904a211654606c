// The seam between the engine and whatever serves one accepted guest TCP flow.
//
// The engine owns the netstack and the guest link; a FlowHandler owns the far side of one
// flow (an upstream socket for the opaque relay, the DNS handler for TCP port 53, later
// the TLS/HTTP MITM). The handler talks to the guest only through GuestFlow, and hears
// about the guest only through its on_* calls, which the engine makes from the
// io_context thread. After on_closed() the GuestFlow is gone: the handler must not touch
// it again, and must let go of its own resources (sockets, timers) soon.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace airlock::relay {

// The guest's end of one accepted flow (implemented by the engine over NetStack).
class GuestFlow {
 public:
  virtual ~GuestFlow() = default;
  // Bytes the guest sent, up to max; empty when none are buffered.
  virtual std::vector<std::uint8_t> read(std::size_t max) = 0;
  // Offers bytes for the guest; returns how many the flow's send buffer took. A short
  // count means "full": on_writable() follows when space frees.
  virtual std::size_t send(std::span<const std::uint8_t> bytes) = 0;
  // FIN to the guest once everything sent so far is delivered.
  virtual void shutdown_write() = 0;
  // RST to the guest; on_closed() follows.
  virtual void abort() = 0;
  // The guest link's write queue is over its high-water mark: stop producing (reading
  // upstream) until on_writable().
  virtual bool congested() const = 0;
  // The guest has sent FIN (read() still drains what came before it).
  virtual bool read_closed() const = 0;
};

class FlowHandler {
 public:
  enum class Close : std::uint8_t {
    graceful,  // both sides finished (FIN/FIN): let queued upstream bytes go out
    abortive,  // reset, timeout or teardown: drop everything, RST upstream
  };

  virtual ~FlowHandler() = default;
  // The flow is accepted (SYN-ACK sent); start moving bytes.
  virtual void start(GuestFlow& guest) = 0;
  virtual void on_readable() = 0;     // guest bytes are waiting in read()
  virtual void on_writable() = 0;     // send() has room again, or the link decongested
  virtual void on_read_closed() = 0;  // the guest sent FIN
  virtual void on_closed(Close how) = 0;
  // What the flow turned out to carry, for its close event ("tcp", "tls", "http", ...).
  virtual std::string_view protocol() const { return "tcp"; }
};

}  // namespace airlock::relay
