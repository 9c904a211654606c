// NetworkEngine: the guest's whole network, run on an io_context.
//
// Theory of operation. The engine is the I/O driver around the sans-IO pieces:
//   - GuestLink carries Ethernet frames between QEMU's `-netdev stream` socket and the
//     NetStack (frames in, frames out), and tells when the link is congested;
//   - the NetStack's timers are driven from next_deadline() with one steady_timer;
//   - UDP to gateway:53 is answered inline by the DnsHandler; TCP to gateway:53 becomes
//     a DnsStreamFlow (same handler, 2-byte framing); every other port on the gateway
//     is reset;
//   - every other TCP flow (FlowRequested) is judged before anything is dialled:
//       1. the destination is mapped back to the name the guest resolved
//          (SyntheticPool::name_for); a synthetic address with no name is reset
//          (unknown_synthetic_address); any other address is a literal IP;
//       2. Evaluator::evaluate(host, port): blocked -> RST + a blocked event;
//       3. allowed -> Dial: resolve the name once, check every address with the IP
//          guard, connect (with a deadline) to an allowed one -> accept(flow) (SYN-ACK),
//          or RST + a blocked event with private_address / dns_failed / connect_failed /
//          connect_timeout;
//       4. the connected flow gets a FlowHandler (RelayFlow by default; a handler
//          factory lets TLS/HTTP handlers take over) that moves bytes with backpressure;
//       5. FlowClosed -> a network event with the byte counts and duration.
//     The synthetic address is pinned in the pool while its flow lives.
// Events go to the EventSink as {type: "network"|"dns", data: {...}}; the caller adds
// seq/timestamp/vm_id. Single-threaded: run the io_context on one thread.
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
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "policy/evaluator.hpp"
#include "policy/policy.hpp"
#include "proxy/dns/dns_handler.hpp"
#include "proxy/dns/name_pool.hpp"
#include "proxy/netstack/stack.hpp"
#include "proxy/relay/dialer.hpp"
#include "proxy/relay/flow_handler.hpp"
#include "proxy/relay/guest_link.hpp"
#include "proxy/relay/resolver.hpp"

namespace airlock::relay {

namespace asio = boost::asio;

// Reasons on network events beyond policy::reason and dial_reason.
namespace flow_reason {
inline constexpr std::string_view unknown_synthetic_address = "unknown_synthetic_address";
inline constexpr std::string_view gateway_port = "gateway_port";  // gateway ports other than 53
}  // namespace flow_reason

// One audit event: type "network" or "dns", and the object that goes under that key.
struct AuditEvent {
  std::string type;
  nlohmann::json data;
};
using EventSink = std::function<void(AuditEvent)>;

struct EngineConfig {
  std::filesystem::path socket_path;       // where QEMU's -netdev stream connects
  netstack::Config net;                    // addressing and caps; isn_seed 0 = random
  dns::DnsHandler::Config dns;
  dns::SyntheticPool::Config pool;
  Resolver::Config resolver;
  std::chrono::milliseconds connect_timeout{5'000};  // with resolver.timeout, under
                                                      // net.pending_timeout
  std::size_t link_high_water = 4u << 20;  // guest link congested: upstream reads pause
  std::size_t link_max_queued = 16u << 20; // frames beyond are dropped
  std::function<void(std::string_view)> log;  // default: stderr
};

// What a handler factory learns about a flow it may take over.
struct FlowContext {
  netstack::FlowId id = 0;
  netstack::FlowKey key;
  std::string host;                  // the name, or the literal IP's text
  std::uint16_t port = 0;
  std::string rule;                  // the allow rule that let it through
  policy::IpAddress address;         // the upstream address connected to
};
using HandlerFactory =
    std::function<std::shared_ptr<FlowHandler>(const FlowContext&, asio::ip::tcp::socket)>;

class NetworkEngine {
 public:
  struct Counters {
    std::uint64_t flows_requested = 0;
    std::uint64_t flows_connected = 0;      // accepted and relayed
    std::uint64_t flows_blocked = 0;        // refused by the policy (evaluate or IP guard)
    std::uint64_t flows_failed = 0;         // dns_failed, connect_failed, connect_timeout
    std::uint64_t flows_unknown_synthetic = 0;
    std::uint64_t gateway_refused = 0;      // TCP to a gateway port other than 53
    std::uint64_t dns_tcp_flows = 0;
    std::uint64_t dials_cancelled = 0;      // the guest gave up while we dialled
  };

  // Throws std::runtime_error for an unusable configuration (bad dns_servers, ...).
  NetworkEngine(asio::io_context& io, const policy::Policy& policy, EngineConfig config,
                EventSink sink);
  ~NetworkEngine();
  NetworkEngine(const NetworkEngine&) = delete;
  NetworkEngine& operator=(const NetworkEngine&) = delete;

  // Starts listening on config.socket_path. Throws boost::system::system_error.
  void start();
  // Stops listening, resets every flow, closes the link.
  void stop();

  // Chooses the handler for each connected flow (default: RelayFlow).
  void set_handler_factory(HandlerFactory factory) { factory_ = std::move(factory); }

  const Counters& counters() const { return counters_; }
  const netstack::Counters& stack_counters() const { return stack_.counters(); }
  const dns::DnsHandler::Counters& dns_counters() const { return dns_.counters(); }
  const GuestLink::Counters& link_counters() const { return link_.counters(); }
  const Resolver::Counters& resolver_counters() const { return resolver_.counters(); }
  std::size_t live_flows() const { return flows_.size(); }

 private:
  struct Flow;

  void pump();
  void request_pump();
  void arm_timer();
  void dispatch(const netstack::Event& event);
  void on_flow_requested(const netstack::FlowRequested& requested);
  void on_dialled(netstack::FlowId id, DialResult result);
  void on_flow_closed(const netstack::FlowClosed& closed);
  void refuse(Flow& flow, std::string_view reason, const std::string& rule,
              const std::string& detail = {});
  void emit(std::string type, nlohmann::json data);
  void log(std::string_view line) const;

  asio::io_context& io_;
  EngineConfig config_;
  EventSink sink_;
  policy::NetworkPolicy network_;
  policy::Evaluator evaluator_;
  dns::SyntheticPool pool_;
  dns::DnsHandler dns_;
  Resolver resolver_;
  netstack::NetStack stack_;
  GuestLink link_;
  asio::steady_timer timer_;
  std::optional<netstack::TimePoint> timer_at_;
  std::unordered_map<netstack::FlowId, std::unique_ptr<Flow>> flows_;
  HandlerFactory factory_;
  bool pump_posted_ = false;
  bool pumping_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  Counters counters_;
};

}  // namespace airlock::relay
