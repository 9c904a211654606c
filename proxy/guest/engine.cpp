// The guest network's I/O driver; see engine.hpp for the theory of operation.
#include "proxy/relay/engine.hpp"

#include <cstdio>
#include <random>
#include <utility>
#include <variant>

#include <boost/asio/post.hpp>

#include "proxy/relay/dns_stream.hpp"
#include "proxy/relay/relay_flow.hpp"

namespace airlock::relay {

namespace {

netstack::Config with_seed(netstack::Config config) {
  if (config.isn_seed == 0) {
    std::random_device random;
    config.isn_seed = (std::uint64_t{random()} << 32) | random();
  }
  return config;
}

std::int64_t millis_between(netstack::TimePoint from, netstack::TimePoint to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

}  // namespace

// One guest flow from FlowRequested to FlowClosed; the guest side its handler sees.
struct NetworkEngine::Flow final : GuestFlow {
  Flow(NetworkEngine& e, netstack::FlowId i, netstack::FlowKey k)
      : engine(e), id(i), key(k), started(netstack::Clock::now()) {}

  std::vector<std::uint8_t> read(std::size_t max) override {
    auto bytes = engine.stack_.read(id, max, netstack::Clock::now());
    engine.request_pump();  // a window update may be due
    return bytes;
  }
  std::size_t send(std::span<const std::uint8_t> bytes) override {
    const std::size_t taken = engine.stack_.send(id, bytes, netstack::Clock::now());
    if (taken > 0) engine.request_pump();
    return taken;
  }
  void shutdown_write() override {
    engine.stack_.shutdown_write(id, netstack::Clock::now());
    engine.request_pump();
  }
  void abort() override {
    engine.stack_.abort(id);
    engine.request_pump();
  }
  bool congested() const override { return engine.link_.congested(); }
  bool read_closed() const override { return guest_fin; }

  NetworkEngine& engine;
  netstack::FlowId id;
  netstack::FlowKey key;
  netstack::TimePoint started;
  std::string host;           // name or literal IP text, for events
  std::uint16_t port = 0;
  std::string rule;
  std::optional<policy::IpAddress> pinned;    // synthetic address held in the pool
  std::optional<policy::IpAddress> upstream;  // address connected to
  std::shared_ptr<Dial> dial;
  std::shared_ptr<FlowHandler> handler;
  bool guest_fin = false;
  bool reported = false;  // its event went out already (refused) or none is due (DNS)
};

NetworkEngine::NetworkEngine(asio::io_context& io, const policy::Policy& policy,
                             EngineConfig config, EventSink sink)
    : io_(io),
      config_(std::move(config)),
      sink_(std::move(sink)),
      network_(policy.network),
      evaluator_(network_),
      pool_(config_.pool),
      dns_(config_.dns, evaluator_, network_, pool_),
      resolver_(io, network_, config_.resolver),
      stack_(with_seed(config_.net),
             [this](std::span<const std::uint8_t> query) {
               return dns_.answer(query, dns::Clock::now(), dns::Transport::udp);
             }),
      link_(io,
            GuestLink::Config{config_.socket_path, 256 * 1024, config_.link_high_water,
                              config_.link_max_queued, 1u << 20},
            GuestLink::Handlers{
                [this](std::span<const std::uint8_t> frame) {
                  stack_.on_frame(frame, netstack::Clock::now());
                },
                [this] { pump(); },
                [this] {
                  for (auto& [id, flow] : flows_)
                    if (flow->handler) flow->handler->on_writable();
                  pump();
                },
                [this](std::string_view line) { log(line); }}),
      timer_(io) {}

NetworkEngine::~NetworkEngine() {
  stop();
  alive_.reset();
}

void NetworkEngine::start() { link_.listen(); }

void NetworkEngine::stop() {
  timer_.cancel();
  timer_at_.reset();
  for (auto& [id, flow] : flows_) {
    if (flow->dial) flow->dial->cancel();
    if (flow->handler) flow->handler->on_closed(FlowHandler::Close::abortive);
    if (flow->pinned) pool_.unpin(*flow->pinned, dns::Clock::now());
  }
  flows_.clear();
  link_.close();
}

void NetworkEngine::request_pump() {
  if (pump_posted_) return;
  pump_posted_ = true;
  std::weak_ptr<bool> alive = alive_;
  asio::post(io_, [this, alive] {
    if (alive.expired()) return;
    pump_posted_ = false;
    pump();
  });
}

// Handles everything the stack queued: events to their flows, frames to the link, DNS
// events to the sink; then re-arms the stack's timer.
void NetworkEngine::pump() {
  if (pumping_) return;  // the outer pump's loop picks up what was queued
  pumping_ = true;
  auto& events = stack_.events();
  while (!events.empty()) {
    netstack::Event event = events.front();
    events.pop_front();
    dispatch(event);
  }
  for (auto& frame : stack_.outbound_frames()) link_.send(std::move(frame));
  stack_.outbound_frames().clear();
  auto& dns_events = dns_.events();
  while (!dns_events.empty()) {
    const dns::DnsEvent& e = dns_events.front();
    nlohmann::json data = {{"name", e.name}, {"qtype", e.qtype}, {"rcode", e.rcode},
                           {"blocked", e.blocked}};
    if (!e.answer.empty()) data["answer"] = e.answer;
    if (e.blocked) data["block_reason"] = e.reason;
    if (!e.rule.empty()) data["rule"] = e.rule;
    dns_events.pop_front();
    emit("dns", std::move(data));
  }
  pumping_ = false;
  arm_timer();
}

void NetworkEngine::arm_timer() {
  const auto deadline = stack_.next_deadline();
  if (!deadline) {
    if (timer_at_) timer_.cancel();
    timer_at_.reset();
    return;
  }
  if (timer_at_ && *timer_at_ == *deadline) return;
  timer_at_ = deadline;
  timer_.expires_at(*deadline);
  std::weak_ptr<bool> alive = alive_;
  timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    timer_at_.reset();
    stack_.on_timer(netstack::Clock::now());
    pump();
  });
}

void NetworkEngine::dispatch(const netstack::Event& event) {
  auto handler_of = [this](netstack::FlowId id) -> Flow* {
    auto it = flows_.find(id);
    return it == flows_.end() ? nullptr : it->second.get();
  };
  if (const auto* e = std::get_if<netstack::FlowRequested>(&event)) {
    on_flow_requested(*e);
  } else if (const auto* r = std::get_if<netstack::FlowReadable>(&event)) {
    if (Flow* flow = handler_of(r->id); flow && flow->handler) flow->handler->on_readable();
  } else if (const auto* w = std::get_if<netstack::FlowWritable>(&event)) {
    if (Flow* flow = handler_of(w->id); flow && flow->handler) flow->handler->on_writable();
  } else if (const auto* c = std::get_if<netstack::FlowReadClosed>(&event)) {
    if (Flow* flow = handler_of(c->id)) {
      flow->guest_fin = true;
      if (flow->handler) flow->handler->on_read_closed();
    }
  } else if (const auto* closed = std::get_if<netstack::FlowClosed>(&event)) {
    on_flow_closed(*closed);
  }
  // FlowReset: FlowClosed{reset_by_guest} follows and does the work.
}

void NetworkEngine::on_flow_requested(const netstack::FlowRequested& requested) {
  ++counters_.flows_requested;
  auto owned = std::make_unique<Flow>(*this, requested.id, requested.key);
  Flow& flow = *owned;
  flows_[requested.id] = std::move(owned);
  const auto dst = policy::IpAddress::v4(requested.key.dst_ip);
  flow.port = requested.key.dst_port;
  flow.host = dst.to_string();

  if (requested.key.dst_ip == stack_.config().gateway_ip) {
    if (flow.port == 53) {
      ++counters_.dns_tcp_flows;
      flow.reported = true;  // its queries are reported as dns events
      stack_.accept(flow.id, netstack::Clock::now());
      flow.handler = std::make_shared<DnsStreamFlow>(dns_);
      flow.handler->start(flow);
    } else {
      ++counters_.gateway_refused;
      refuse(flow, flow_reason::gateway_port, "");
    }
    return;
  }

  std::optional<policy::Host> host;
  if (pool_.contains(dst)) {
    auto name = pool_.name_for(dst);
    if (!name) {
      ++counters_.flows_unknown_synthetic;
      refuse(flow, flow_reason::unknown_synthetic_address, "");
      return;
    }
    pool_.pin(dst);
    flow.pinned = dst;
    flow.host = *name;
    host = policy::Host{*name};
  } else {
    host = policy::Host{dst};
  }

  policy::Decision decision = evaluator_.evaluate(*host, flow.port);
  if (!decision.allowed) {
    ++counters_.flows_blocked;
    refuse(flow, decision.reason, decision.rule);
    return;
  }
  flow.rule = decision.rule;
  std::weak_ptr<bool> alive = alive_;
  const netstack::FlowId id = flow.id;
  flow.dial = Dial::start(io_, resolver_, evaluator_, *host, flow.port, config_.connect_timeout,
                          [this, alive, id](DialResult result) {
                            if (alive.expired()) return;
                            on_dialled(id, std::move(result));
                          });
}

void NetworkEngine::on_dialled(netstack::FlowId id, DialResult result) {
  auto it = flows_.find(id);
  if (it == flows_.end()) return;  // closed meanwhile; the socket closes with `result`
  Flow& flow = *it->second;
  flow.dial.reset();
  if (!result.connected()) {
    if (result.reason == dial_reason::private_address)
      ++counters_.flows_blocked;
    else
      ++counters_.flows_failed;
    refuse(flow, result.reason, result.rule.empty() ? flow.rule : result.rule, result.detail);
    pump();
    return;
  }
  if (!stack_.accept(id, netstack::Clock::now())) return;  // FlowClosed is on its way
  ++counters_.flows_connected;
  flow.upstream = result.address;
  FlowContext context{id, flow.key, flow.host, flow.port, flow.rule, *result.address};
  if (factory_) {
    flow.handler = factory_(context, std::move(*result.socket));
  }
  if (!flow.handler) {
    if (result.socket->is_open())
      flow.handler = std::make_shared<RelayFlow>(std::move(*result.socket));
  }
  if (flow.handler) {
    flow.handler->start(flow);
  } else {
    stack_.abort(id);
  }
  pump();
}

void NetworkEngine::on_flow_closed(const netstack::FlowClosed& closed) {
  auto it = flows_.find(closed.id);
  if (it == flows_.end()) return;
  std::unique_ptr<Flow> flow = std::move(it->second);
  flows_.erase(it);
  if (flow->dial) {
    ++counters_.dials_cancelled;
    flow->dial->cancel();
  }
  if (flow->handler) {
    flow->handler->on_closed(closed.reason == "closed" ? FlowHandler::Close::graceful
                                                       : FlowHandler::Close::abortive);
  }
  if (flow->pinned) pool_.unpin(*flow->pinned, dns::Clock::now());
  if (flow->reported) return;
  nlohmann::json data = {
      {"kind", "flow"},
      {"protocol", flow->handler ? std::string(flow->handler->protocol()) : std::string("tcp")},
      {"host", flow->host},
      {"port", flow->port},
      {"request_bytes", closed.bytes_in},
      {"response_bytes", closed.bytes_out},
      {"duration_ms", millis_between(flow->started, netstack::Clock::now())},
      {"blocked", false},
      {"rule", flow->rule},
      {"close_reason", std::string(closed.reason)},
  };
  if (flow->upstream) data["address"] = flow->upstream->to_string();
  emit("network", std::move(data));
}

void NetworkEngine::refuse(Flow& flow, std::string_view reason, const std::string& rule,
                           const std::string& detail) {
  stack_.reject(flow.id);
  flow.reported = true;
  nlohmann::json data = {{"kind", "flow"},
                         {"host", flow.host},
                         {"port", flow.port},
                         {"blocked", true},
                         {"block_reason", std::string(reason)},
                         {"rule", rule}};
  if (!detail.empty()) data["detail"] = detail;
  emit("network", std::move(data));
}

void NetworkEngine::emit(std::string type, nlohmann::json data) {
  if (sink_) sink_(AuditEvent{std::move(type), std::move(data)});
}

void NetworkEngine::log(std::string_view line) const {
  if (config_.log) {
    config_.log(line);
    return;
  }
  std::fprintf(stderr, "network: %.*s\n", static_cast<int>(line.size()), line.data());
}

}  // namespace airlock::relay
