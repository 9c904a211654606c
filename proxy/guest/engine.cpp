// The guest network's I/O driver; see engine.hpp for the theory of operation.
#include "proxy/guest/engine.hpp"

#include <cstdio>
#include <random>
#include <utility>
#include <variant>

#include <boost/asio/post.hpp>

#include "proxy/flow/driver.hpp"
#include "proxy/guest/dns_stream.hpp"

namespace airlock::guest {

namespace {

netstack::Config with_seed(netstack::Config config) {
  if (config.isn_seed == 0) {
    std::random_device random;
    config.isn_seed = (std::uint64_t{random()} << 32) | random();
  }
  return config;
}

}  // namespace

// One guest flow from FlowRequested to FlowClosed; the guest side its handler sees.
struct NetworkEngine::Flow final : flow::GuestFlow {
  Flow(NetworkEngine& e, netstack::FlowId i, netstack::FlowKey k) : engine(e), id(i), key(k) {}

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
  std::string host;           // name or literal IP text, for records
  std::uint16_t port = 0;
  std::optional<policy::IpAddress> pinned;  // synthetic address held in the pool
  std::shared_ptr<flow::FlowHandler> handler;
  bool guest_fin = false;
};

NetworkEngine::NetworkEngine(asio::io_context& io, std::shared_ptr<mitm::MitmContext> context,
                             EngineConfig config, EventSink sink)
    : io_(io),
      context_(std::move(context)),
      config_(std::move(config)),
      sink_(std::move(sink)),
      pool_(config_.pool),
      dns_(config_.dns, context_->policy().evaluator(), context_->policy().network(), pool_),
      resolver_(io, context_->policy().network(), config_.resolver),
      dialer_(io, resolver_, context_->policy(), config_.dialer),
      upstreams_(io),
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
                  drain_dns_events();
                },
                [this] { pump(); },
                [this] {
                  std::vector<std::shared_ptr<flow::FlowHandler>> handlers;
                  for (auto& [id, flow] : flows_)
                    if (flow->handler) handlers.push_back(flow->handler);
                  for (auto& handler : handlers) handler->on_writable();
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
  auto flows = std::move(flows_);
  flows_.clear();
  for (auto& [id, flow] : flows) {
    if (flow->handler) flow->handler->on_closed(flow::FlowHandler::Close::abortive, {"network_stopped", 0, 0});
    if (flow->pinned) pool_.unpin(*flow->pinned, dns::Clock::now());
  }
  drain_dns_events();
  upstreams_.clear();
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
  drain_dns_events();
  pumping_ = false;
  arm_timer();
}

void NetworkEngine::drain_dns_events() {
  auto& dns_events = dns_.events();
  while (!dns_events.empty()) {
    dns::DnsEvent& e = dns_events.front();
    audit::DnsQuery q;
    q.name = std::move(e.name);
    q.qtype = std::move(e.qtype);
    q.rcode = std::move(e.rcode);
    q.answer = std::move(e.answer);
    q.blocked = e.blocked;
    if (e.blocked) q.block_reason = std::move(e.reason);
    q.rule = std::move(e.rule);
    dns_events.pop_front();
    emit(std::move(q));
  }
  // The handler's queue is bounded; what it had to drop is said, never silent.
  const std::uint64_t dropped = dns_.counters().events_dropped;
  if (dropped > dns_lost_reported_) {
    const std::uint64_t lost = dropped - dns_lost_reported_;
    dns_lost_reported_ = dropped;
    counters_.dns_events_lost += lost;
    emit(audit::EventsLost{lost, "dns", "queue_full"});
  }
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
  auto flow_of = [this](netstack::FlowId id) -> Flow* {
    auto it = flows_.find(id);
    return it == flows_.end() ? nullptr : it->second.get();
  };
  if (const auto* e = std::get_if<netstack::FlowRequested>(&event)) {
    on_flow_requested(*e);
  } else if (const auto* r = std::get_if<netstack::FlowReadable>(&event)) {
    if (Flow* flow = flow_of(r->id); flow && flow->handler) flow->handler->on_readable();
  } else if (const auto* w = std::get_if<netstack::FlowWritable>(&event)) {
    if (Flow* flow = flow_of(w->id); flow && flow->handler) flow->handler->on_writable();
  } else if (const auto* c = std::get_if<netstack::FlowReadClosed>(&event)) {
    if (Flow* flow = flow_of(c->id)) {
      flow->guest_fin = true;
      if (flow->handler) flow->handler->on_read_closed();
    }
  } else if (const auto* closed = std::get_if<netstack::FlowClosed>(&event)) {
    on_flow_closed(*closed);
  } else if (const auto* refused = std::get_if<netstack::FlowRefused>(&event)) {
    on_flow_refused(*refused);
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
      stack_.accept(flow.id, netstack::Clock::now());
      audit::Flow record;
      record.host = flow.host;
      record.port = flow.port;
      flow.handler = std::make_shared<DnsStreamFlow>(dns_, std::move(record), [this](audit::Event e) { emit(std::move(e)); });
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

  policy::Admission admission = context_->policy().admit(*host, flow.port);
  if (!admission.admitted()) {
    ++counters_.flows_refused;
    refuse(flow, admission.reason, admission.rule.to_string());
    return;
  }
  if (!stack_.accept(flow.id, netstack::Clock::now())) return;  // FlowClosed is on its way
  ++counters_.flows_admitted;
  auto driver = std::make_shared<flow::FlowDriver>(io_, context_, std::move(*admission.grant), dialer_, &upstreams_,
                                                   [this](audit::Event e) { emit(std::move(e)); });
  flow.handler = driver;
  driver->start(flow);
}

void NetworkEngine::on_flow_closed(const netstack::FlowClosed& closed) {
  auto it = flows_.find(closed.id);
  if (it == flows_.end()) return;
  std::unique_ptr<Flow> flow = std::move(it->second);
  flows_.erase(it);
  if (flow->handler) {
    flow->handler->on_closed(closed.reason == "closed" ? flow::FlowHandler::Close::graceful
                                                       : flow::FlowHandler::Close::abortive,
                             flow::CloseInfo{closed.reason, closed.bytes_in, closed.bytes_out});
  }
  if (flow->pinned) pool_.unpin(*flow->pinned, dns::Clock::now());
}

void NetworkEngine::on_flow_refused(const netstack::FlowRefused& refused) {
  ++counters_.flows_refused_cap;
  audit::Flow record;
  const auto dst = policy::IpAddress::v4(refused.key.dst_ip);
  record.host = dst.to_string();
  if (pool_.contains(dst))
    if (auto name = pool_.name_for(dst)) record.host = *name;
  record.port = refused.key.dst_port;
  record.blocked = true;
  record.block_reason = std::string(refused.reason);
  record.detail = "the guest network's connection cap was reached";
  record.close_reason = "refused";
  emit(std::move(record));
}

void NetworkEngine::refuse(Flow& flow, std::string_view reason, const std::string& rule, const std::string& detail) {
  // Recorded here: the netstack's FlowClosed{rejected} for it finds no handler.
  audit::Flow record;
  record.host = flow.host;
  record.port = flow.port;
  record.blocked = true;
  record.block_reason = std::string(reason);
  record.rule = rule;
  record.detail = detail;
  record.close_reason = "refused";
  stack_.reject(flow.id);
  emit(std::move(record));
}

void NetworkEngine::emit(audit::Event event) {
  if (sink_) sink_(std::move(event));
}

nlohmann::json NetworkEngine::counters_json() const {
  nlohmann::json out = nlohmann::json::object();
  nlohmann::json stack = nlohmann::json::object();
  netstack::for_each_counter(stack_.counters(), [&](const char* name, std::uint64_t v) {
    if (v != 0) stack[name] = v;
  });
  out["netstack"] = std::move(stack);
  const auto& d = dns_.counters();
  out["dns"] = {{"queries", d.queries},          {"responses", d.responses},
                {"answered_a", d.answered_a},    {"nodata", d.nodata},
                {"refused_policy", d.refused_policy}, {"refused_ip_literal", d.refused_ip_literal},
                {"refused_ptr", d.refused_ptr},  {"refused_other", d.refused_other},
                {"formerr", d.formerr},          {"notimp", d.notimp},
                {"badvers", d.badvers},          {"servfail_exhausted", d.servfail_exhausted},
                {"truncated", d.truncated},      {"dropped_short", d.dropped_short},
                {"dropped_response", d.dropped_response}, {"dropped_oversize", d.dropped_oversize},
                {"events_dropped", d.events_dropped}};
  const auto& l = link_.counters();
  out["link"] = {{"connections", l.connections},       {"replaced", l.replaced},
                 {"disconnects", l.disconnects},       {"framing_errors", l.framing_errors},
                 {"frames_in", l.frames_in},           {"frames_out", l.frames_out},
                 {"dropped_no_link", l.dropped_no_link}, {"dropped_queue_full", l.dropped_queue_full}};
  const auto& r = resolver_.counters();
  out["resolver"] = {{"lookups", r.lookups}, {"overrides", r.overrides}, {"answered", r.answered},
                     {"failed", r.failed},   {"timeouts", r.timeouts}};
  const auto& u = dialer_.counters();
  out["dialer"] = {{"dials", u.dials},   {"connected", u.connected}, {"refused", u.refused},
                   {"failed", u.failed}, {"cancelled", u.cancelled}, {"queued", u.queued}};
  const auto& p = upstreams_.counters();
  out["pool"] = {{"released", p.released}, {"reused", p.reused}, {"evicted", p.evicted}, {"dropped", p.dropped}};
  const auto& c = counters_;
  out["flows"] = {{"requested", c.flows_requested},     {"admitted", c.flows_admitted},
                  {"refused", c.flows_refused},         {"refused_cap", c.flows_refused_cap},
                  {"unknown_synthetic", c.flows_unknown_synthetic}, {"gateway_refused", c.gateway_refused},
                  {"dns_tcp", c.dns_tcp_flows},         {"dns_events_lost", c.dns_events_lost}};
  out["mitm"] = context_->counters_json();
  return out;
}

void NetworkEngine::log(std::string_view line) const {
  if (config_.log) {
    config_.log(line);
    return;
  }
  std::fprintf(stderr, "network: %.*s\n", static_cast<int>(line.size()), line.data());
}

}  // namespace airlock::guest
