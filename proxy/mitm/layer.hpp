// The MITM's one vocabulary: every layer of an intercepted flow takes events in and gives
// commands out, mitmproxy's way, and never touches a socket.
//
// Theory of operation. A flow is a stack of layers (flow_layer.hpp: classify, then a TLS
// bridge, HTTP, or a tunnel). The driver (proxy/flow) owns the two transports - the
// guest's connection and, once a layer asks for it, the upstream's - and feeds the root
// layer what happens on them; each layer handles what it can and passes the rest to the
// layer it created, rewriting what crosses it (the TLS bridge decrypts DataIn on the way
// in and encrypts Send on the way out). Commands come back in order and the driver
// carries them out in that order.
//
// Events in:   Start (the flow begins), DataIn (bytes from one side), ClosedIn (one side
//              ended: EOF or reset), Connected (the upstream transport is up; for layers
//              above the TLS bridge, TLS with it too), ConnectFailed (it could not be),
//              Drained (the driver's queue toward one side went low: produce more),
//              TimerIn (a layer's deadline passed).
// Commands out: Send (bytes to one side), Close (one side: graceful = FIN after what is
//              queued, or reset), Open (dial the upstream the flow's grant allows; lazily,
//              when there is something to send), Release (the upstream connection is idle
//              and clean: the driver may pool it for the next flow to the same place),
//              Emit (an audit event), Note (facts for the flow's one closing record: what
//              it carried, why it was refused).
//
// Backpressure: the driver reads a side only while wants(side) holds and its own queue
// toward the other side is short; a layer that stopped producing for lack of room says
// so with pending(side) and goes on at Drained.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "audit/events.hpp"
#include "proxy/tls/endpoint.hpp"

namespace airlock::mitm {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;

enum class Side : std::uint8_t { guest, upstream };

inline Side other(Side side) { return side == Side::guest ? Side::upstream : Side::guest; }

// ---- events -----------------------------------------------------------------------------
struct Start {};
struct DataIn {
  Side side;
  Bytes bytes;
};
struct ClosedIn {
  Side side;
  bool reset = false;   // RST or an I/O error, not an orderly EOF
  std::string detail;
};
struct Connected {
  std::string alpn;     // negotiated with the upstream (TLS), "" for none
  // A pooled connection handed back: already used for earlier requests (so an origin
  // closing it as a request goes out is a keep-alive race), with its TLS session when it
  // is a TLS connection.
  bool reused = false;
  std::shared_ptr<tls::TlsEndpoint> tls;
};
struct ConnectFailed {
  std::string reason;   // private_address, dns_failed, connect_failed, connect_timeout,
                        // upstream_tls_failed
  std::string detail;
  std::string rule;     // the IP guard's rule, when it refused
};
struct Drained {
  Side side;
};
struct TimerIn {};
using Event = std::variant<Start, DataIn, ClosedIn, Connected, ConnectFailed, Drained, TimerIn>;

// ---- commands ---------------------------------------------------------------------------
struct Send {
  Side side;
  Bytes bytes;
};
struct Close {
  Side side;
  bool reset = false;
};
struct Open {
  std::vector<std::string> alpn;  // what the HTTP layer can speak upstream (for TLS)
  bool tls = false;               // TLS is made on top (by the bridge)
  bool reusable = false;          // an idle HTTP/1.1 connection from the pool will do
};
// The layers are done with the upstream connection and it is clean to reuse (HTTP/1.1,
// idle, between messages): the driver may pool it, with its TLS session, for another
// connection of the same flow kind (host, port, rule) instead of closing it.
struct Release {
  std::shared_ptr<tls::TlsEndpoint> tls;
};
struct Emit {
  audit::Event event;
};
// Facts for the flow's closing record; empty fields leave what is known unchanged.
struct Note {
  std::string protocol;      // tls, http, opaque, ...
  std::string sni;
  std::string alpn;
  std::string block_reason;  // the policy refused the flow
  std::string error;         // it failed otherwise (connect_failed, guest_tls_failed, ...)
  std::string detail;
};
using Command = std::variant<Send, Close, Open, Release, Emit, Note>;
using Commands = std::vector<Command>;

class Layer {
 public:
  virtual ~Layer() = default;
  virtual void handle(Event event, Clock::time_point now, Commands& out) = 0;
  virtual std::optional<Clock::time_point> deadline() const { return std::nullopt; }
  // Whether the driver may read more from `side` now.
  virtual bool wants(Side side) const = 0;
  // Output for `side` waits for room (resumed by Drained{side}).
  virtual bool pending(Side /*side*/) const { return false; }
};

}  // namespace airlock::mitm
