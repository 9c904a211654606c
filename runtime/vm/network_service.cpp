// The guest network on its own thread; see network_service.hpp.
#include "runtime/vm/network_service.hpp"

#include <unistd.h>

#include <bit>
#include <optional>
#include <random>
#include <thread>

// GCC 12's flow analysis reports a "potential null dereference" inside Asio's scheduler
// once it is inlined here; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio.hpp>

#include "audit/queue.hpp"
#include "policy/engine.hpp"
#include "proxy/guest/engine.hpp"
#include "proxy/mitm/context.hpp"

namespace airlock::runtime {

namespace asio = boost::asio;

struct NetworkService::Impl {
  policy::Policy policy;
  NetworkServiceConfig config;
  std::unique_ptr<audit::EventQueue> queue;

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::shared_ptr<mitm::MitmContext> mitm;
  std::unique_ptr<guest::NetworkEngine> engine;
  std::map<std::string, std::string> env;
  std::string pem;
  NetworkConfig nic;
  bool running = false;

  void log(std::string_view line) const {
    if (config.log) config.log(line);
  }
};

NetworkService::NetworkService(const policy::Policy& policy, NetworkServiceConfig config)
    : impl_(std::make_unique<Impl>()) {
  impl_->policy = policy;
  impl_->config = std::move(config);
  const auto mode = policy.audit.on_overflow == policy::AuditOverflow::kDrop ? audit::EventQueue::Overflow::kDrop
                                                                             : audit::EventQueue::Overflow::kBlock;
  impl_->queue = std::make_unique<audit::EventQueue>(policy.audit.queue_events, mode, [impl = impl_.get()] {
    if (impl->config.on_events) impl->config.on_events();
  });
}

NetworkService::~NetworkService() { stop(); }

Result<bool> NetworkService::start() {
  Impl& s = *impl_;
  if (s.running) return true;
  guest::EngineConfig net;
  net.socket_path = s.config.socket_path;
  std::random_device random;
  net.net.isn_seed = (std::uint64_t{random()} << 32) | random();
  net.log = [impl = impl_.get()](std::string_view line) { impl->log(std::string("network: ") + std::string(line)); };
  ::unlink(s.config.socket_path.c_str());

  auto engine = policy::PolicyEngine::create(s.policy.network);
  if (!engine) return Error{"can't set up the network policy: " + engine.error()};
  mitm::MitmContext::Options options;
  options.ca_common_name = "airlock VM CA " + s.config.vm_id;
  auto context = mitm::MitmContext::create(*engine, options);
  if (!context) return Error{"can't set up the network policy: " + context.error()};
  s.mitm = std::move(*context);
  s.env = s.mitm->guest_env();
  s.pem = s.mitm->ca().certificate_pem();
  try {
    guest::EventSink sink = [queue = s.queue.get()](audit::Event event) { queue->push(std::move(event)); };
    s.engine = std::make_unique<guest::NetworkEngine>(s.io, s.mitm, net, std::move(sink));
    s.engine->start();
  } catch (const std::exception& e) {
    s.engine.reset();
    return Error{std::string("can't set up the guest network: ") + e.what()};
  }
  auto text = [](netstack::Ipv4Address a) { return policy::IpAddress::v4(a).to_string(); };
  s.nic.socket_path = s.config.socket_path;
  s.nic.mtu = net.net.mtu;
  s.nic.guest_ip = text(net.net.guest_ip) + "/" + std::to_string(std::popcount(net.net.netmask));
  s.nic.gateway_ip = text(net.net.gateway_ip);
  s.nic.dns = s.nic.gateway_ip;

  s.work.emplace(asio::make_work_guard(s.io));
  s.thread = std::thread([impl = impl_.get()] {
    for (;;) {
      try {
        impl->io.run();
        return;
      } catch (const std::exception& e) {
        // A handler that throws must not end the guest's network silently.
        impl->log(std::string("network: handler error: ") + e.what());
      }
    }
  });
  s.running = true;
  return true;
}

void NetworkService::stop() {
  Impl& s = *impl_;
  if (!s.running) return;
  s.running = false;
  // A producer waiting for room must not hold up the join: from here the queue takes
  // everything, for the supervisor's last take_events().
  s.queue->close();
  asio::post(s.io, [impl = impl_.get()] {
    if (impl->engine) impl->engine->stop();
    impl->work.reset();
    impl->io.stop();
  });
  if (s.thread.joinable()) s.thread.join();
}

std::vector<audit::Event> NetworkService::take_events() { return impl_->queue->drain(); }

const std::map<std::string, std::string>& NetworkService::guest_env() const { return impl_->env; }
const std::string& NetworkService::ca_pem() const { return impl_->pem; }
const NetworkConfig& NetworkService::guest_nic() const { return impl_->nic; }

nlohmann::json NetworkService::counters_json() const {
  nlohmann::json counters = impl_->engine ? impl_->engine->counters_json() : nlohmann::json::object();
  const audit::EventQueue::Stats q = impl_->queue->stats();
  nlohmann::json queue = {{"events", q.pushed}, {"high_water", q.high_water}};
  if (q.waits != 0) queue["waits"] = q.waits;
  if (q.dropped != 0) queue["dropped"] = q.dropped;
  counters["audit_queue"] = queue;
  return counters;
}

}  // namespace airlock::runtime
