// Sans-IO multiplexer between the clients of a VM's API socket and the guest's one
// control channel.
//
// Theory of operation: every client numbers its own requests (channel ids it picks);
// the guest sees one connection, so each new request gets a fresh guest channel and the
// router keeps the two-way map (client, client channel) <-> guest channel. Frames are
// rewritten and returned as outputs; the supervisor's I/O drivers only move bytes. What
// each kind of request may carry and when it ends is the business of ExecService
// (exec_service.hpp) and FileService (file_service.hpp); the router applies their rules
// and emits the audit events they produce (exec ends; file changes the guest reports).
//
// Host-only ops (status, stop, events; host_ops.hpp) are handed back to the supervisor
// as requests. When a client disconnects, its running requests are cancelled in the
// guest and their routes stay (output dropped) until the guest ends them, so a late
// reply can't reach a new request that reused the id.
//
// Liveness: while requests are open and the guest has sent nothing for kPingAfterMs, the
// router pings guest-init (channel 0); any frame from the guest counts as its answer. A
// guest silent for kWedgedAfterMs more (guest-init wedged or stopped) fails every open
// request with a timeout error naming the cause, and cancels it in the guest, so a
// client never waits on a dead channel. A long quiet command is not a dead guest: the
// ping is answered by guest-init's loop, not by the command.
//
// Refuses: guest frames on channels nobody opened, guest control frames that are not
// JSON objects, unknown guest ops on channel 0, malformed file events (all dropped and
// counted: the guest runs hostile code); client requests with an unknown op, a reused
// channel, channel 0, or beyond the per-client and total caps (answered with an error).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/frame.hpp"
#include "runtime/vm/exec_service.hpp"
#include "runtime/vm/file_service.hpp"

namespace airlock::runtime {

using ClientId = std::uint64_t;

struct RouterOutput {
  enum class Kind {
    to_guest,      // frame: send on the control channel
    to_client,     // client + frame: send to that API client
    host_request,  // client + frame.channel + json: status/stop/events, for the supervisor
    audit,         // json: {"type":..., "<type>": {...}} without seq/timestamp/vm_id
    hello,         // json: the guest's hello (the VM has booted)
    guest_log,     // json: {"level","message"} from the guest, for the supervisor log
    setup_reply,   // json: the guest's answer to a host setup op (trust_ca.ok / .error)
  };
  Kind kind = Kind::to_guest;
  ClientId client = 0;
  protocol::Frame frame;
  nlohmann::json json;
};

struct RouterCounters {
  std::uint64_t guest_unknown_channel = 0;
  std::uint64_t guest_bad_control = 0;
  std::uint64_t guest_bad_event = 0;
  std::uint64_t client_dropped = 0;
};

class Router {
 public:
  static constexpr std::size_t kMaxChannelsPerClient = 64;
  static constexpr std::size_t kMaxChannels = 1024;
  static constexpr std::size_t kMaxPathBytes = 4096;
  static constexpr std::int64_t kPingAfterMs = 10'000;
  static constexpr std::int64_t kWedgedAfterMs = 20'000;

  using Outputs = std::vector<RouterOutput>;

  Outputs on_client_frame(ClientId client, const protocol::Frame& frame, std::int64_t now_ms);
  Outputs on_guest_frame(const protocol::Frame& frame, std::int64_t now_ms);
  Outputs on_client_closed(ClientId client);
  // Time passes (the supervisor calls it about once a second): the liveness probe above.
  Outputs on_tick(std::int64_t now_ms);
  // The guest is gone (QEMU exited): every open request is answered with a vm_stopped
  // error, and every exec still running gets its record (error: vm_stopped), its
  // client there or not.
  Outputs on_guest_lost(const std::string& reason, std::int64_t now_ms);

  // Variables every exec gets unless its request sets them itself: the policy's env, the
  // secret placeholders and the CA bundle variables.
  void set_base_env(std::map<std::string, std::string> env) { exec_.set_base_env(std::move(env)); }

  std::size_t open_routes() const { return by_guest_.size(); }
  const RouterCounters& counters() const { return counters_; }

  // argv (or a shell string) as one POSIX-shell-safe line, for the audit log.
  static std::string shell_join(const nlohmann::json& exec_request) {
    return ExecService::shell_join(exec_request);
  }

 private:
  struct Route {
    ClientId client = 0;
    std::uint32_t client_channel = 0;
    bool is_exec = false;
    bool client_gone = false;
    ExecService::Running exec;
    FileRouteState file;
  };

  bool waiting() const;  // some request still has a client waiting
  void fail_open_routes(Outputs& out, const std::string& code, const std::string& message, std::int64_t now_ms);

  void end_route(std::uint32_t guest_channel);
  std::uint32_t allocate_channel();
  void reply_error(Outputs& out, ClientId client, std::uint32_t channel, const std::string& code,
                   const std::string& message);
  void on_guest_connection_frame(Outputs& out, const protocol::Frame& frame);
  void on_client_in_flight(Outputs& out, ClientId client, const protocol::Frame& frame,
                           std::uint32_t guest_channel, const nlohmann::json& request);
  void forward_to_client(Outputs& out, const Route& route, const protocol::Frame& frame);

  ExecService exec_;
  std::map<std::uint32_t, Route> by_guest_;
  std::map<std::pair<ClientId, std::uint32_t>, std::uint32_t> by_client_;
  std::map<ClientId, std::size_t> per_client_;
  std::uint32_t next_channel_ = 1;
  RouterCounters counters_;
  std::int64_t last_guest_frame_ms_ = 0;   // the guest's last sign of life
  std::optional<std::int64_t> ping_sent_ms_;  // a ping waiting for any guest frame
};

}  // namespace airlock::runtime
