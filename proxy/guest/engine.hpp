// NetworkEngine: the guest's whole network, run on an io_context.
//
// Theory of operation. The engine is the I/O driver around the sans-IO pieces:
//   - GuestLink carries Ethernet frames between QEMU's `-netdev stream` socket and the
//     NetStack (frames in, frames out), and tells when the link is congested;
//   - the NetStack's timers are driven from next_deadline() with one steady_timer;
//   - UDP to gateway:53 is answered inline by the DnsHandler; TCP to gateway:53 becomes
//     a DnsStreamFlow (same handler, 2-byte framing); every other port on the gateway
//     is reset;
//   - every other TCP flow (FlowRequested) is admitted or refused at once, before
//     anything is dialled:
//       1. the destination is mapped back to the name the guest resolved
//          (SyntheticPool::name_for); a synthetic address with no name is refused
//          (unknown_synthetic_address); any other address is a literal IP;
//       2. PolicyEngine::admit(host, port): refused -> RST and the flow's record;
//       3. admitted -> SYN-ACK, and a FlowDriver runs the MITM's layers on it with the
//          grant. The upstream is dialled only when a layer has something to send
//          (Dialer: resolve once, IP guard on every address, connect), so a slow guest
//          never leaves an idle upstream connection for the origin to time out;
//       4. FlowClosed -> the driver writes the flow's one closing record.
//     The synthetic address is pinned in the pool while its flow lives.
// There is no unpoliced path: every admitted flow goes through the MITM's layers.
// Every connection attempt ends with exactly one flow record: refused at admission,
// refused by a netstack cap (FlowRefused), or closed through its handler. Events go to
// the sink as typed audit events; the caller numbers them. Single-threaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "audit/events.hpp"
#include "proxy/dns/dns_handler.hpp"
#include "proxy/dns/name_pool.hpp"
#include "proxy/flow/flow_handler.hpp"
#include "proxy/flow/pool.hpp"
#include "proxy/guest/guest_link.hpp"
#include "proxy/mitm/context.hpp"
#include "proxy/netstack/stack.hpp"
#include "proxy/upstream/dialer.hpp"
#include "proxy/upstream/resolver.hpp"

namespace airlock::guest {

namespace asio = boost::asio;

// Reasons on flow records beyond policy::reason.
namespace flow_reason {
inline constexpr std::string_view unknown_synthetic_address = "unknown_synthetic_address";
inline constexpr std::string_view gateway_port = "gateway_port";  // gateway ports other than 53
}  // namespace flow_reason

using EventSink = std::function<void(audit::Event)>;

struct EngineConfig {
  std::filesystem::path socket_path;       // where QEMU's -netdev stream connects
  netstack::Config net;                    // addressing and caps; isn_seed 0 = random
  dns::DnsHandler::Config dns;
  dns::SyntheticPool::Config pool;
  upstream::Resolver::Config resolver;
  upstream::Dialer::Config dialer;
  std::size_t link_high_water = 4u << 20;  // guest link congested: upstream reads pause
  std::size_t link_max_queued = 16u << 20; // frames beyond are dropped (and counted)
  std::function<void(std::string_view)> log;  // default: stderr
};

class NetworkEngine {
 public:
  struct Counters {
    std::uint64_t flows_requested = 0;
    std::uint64_t flows_admitted = 0;
    std::uint64_t flows_refused = 0;        // by the policy at admission
    std::uint64_t flows_refused_cap = 0;    // by a netstack cap (FlowRefused)
    std::uint64_t flows_unknown_synthetic = 0;
    std::uint64_t gateway_refused = 0;      // TCP to a gateway port other than 53
    std::uint64_t dns_tcp_flows = 0;
    std::uint64_t dns_events_lost = 0;
  };

  // Throws std::runtime_error for an unusable configuration (bad dns_servers, ...).
  NetworkEngine(asio::io_context& io, std::shared_ptr<mitm::MitmContext> context, EngineConfig config,
                EventSink sink);
  ~NetworkEngine();
  NetworkEngine(const NetworkEngine&) = delete;
  NetworkEngine& operator=(const NetworkEngine&) = delete;

  // Starts listening on config.socket_path. Throws boost::system::system_error.
  void start();
  // Stops listening, resets every flow, closes the link.
  void stop();

  const Counters& counters() const { return counters_; }
  const netstack::Counters& stack_counters() const { return stack_.counters(); }
  const dns::DnsHandler::Counters& dns_counters() const { return dns_.counters(); }
  const GuestLink::Counters& link_counters() const { return link_.counters(); }
  const upstream::Resolver::Counters& resolver_counters() const { return resolver_.counters(); }
  const upstream::Dialer::Counters& dialer_counters() const { return dialer_.counters(); }
  // Every counter of every part, grouped by part (for the VM's stopped event).
  nlohmann::json counters_json() const;
  std::size_t live_flows() const { return flows_.size(); }

 private:
  struct Flow;

  void pump();
  void request_pump();
  void arm_timer();
  void drain_dns_events();
  void dispatch(const netstack::Event& event);
  void on_flow_requested(const netstack::FlowRequested& requested);
  void on_flow_closed(const netstack::FlowClosed& closed);
  void on_flow_refused(const netstack::FlowRefused& refused);
  void refuse(Flow& flow, std::string_view reason, const std::string& rule, const std::string& detail = {});
  void emit(audit::Event event);
  void log(std::string_view line) const;

  asio::io_context& io_;
  std::shared_ptr<mitm::MitmContext> context_;
  EngineConfig config_;
  EventSink sink_;
  dns::SyntheticPool pool_;
  dns::DnsHandler dns_;
  upstream::Resolver resolver_;
  upstream::Dialer dialer_;
  flow::UpstreamPool upstreams_;
  netstack::NetStack stack_;
  GuestLink link_;
  asio::steady_timer timer_;
  std::optional<netstack::TimePoint> timer_at_;
  std::unordered_map<netstack::FlowId, std::unique_ptr<Flow>> flows_;
  bool pump_posted_ = false;
  bool pumping_ = false;
  std::uint64_t dns_lost_reported_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  Counters counters_;
};

}  // namespace airlock::guest
