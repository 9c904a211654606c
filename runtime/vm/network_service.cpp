// The guest network on its own thread; see network_service.hpp.
#include "runtime/vm/network_service.hpp"

#include <unistd.h>

#include <bit>
#include <random>
#include <thread>

// GCC 12's flow analysis reports a "potential null dereference" inside Asio's scheduler
// once it is inlined here; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio.hpp>

#include "proxy/mitm/context.hpp"
#include "proxy/relay/engine.hpp"
#include "proxy/relay/mitm_flow.hpp"

namespace airlock::runtime {

namespace asio = boost::asio;

struct NetworkService::Impl {
  policy::Policy policy;
  NetworkServiceConfig config;
  NetworkEventSink sink;

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::shared_ptr<mitm::MitmContext> mitm;
  std::unique_ptr<relay::NetworkEngine> engine;
  std::map<std::string, std::string> env;
  std::string pem;
  NetworkConfig nic;
  bool running = false;

  void log(std::string_view line) const {
    if (config.log) config.log(line);
  }
};

NetworkService::NetworkService(const policy::Policy& policy, NetworkServiceConfig config,
                               NetworkEventSink sink)
    : impl_(std::make_unique<Impl>()) {
  impl_->policy = policy;
  impl_->config = std::move(config);
  impl_->sink = std::move(sink);
}

NetworkService::~NetworkService() { stop(); }

Result<bool> NetworkService::start() {
  Impl& s = *impl_;
  if (s.running) return true;
  relay::EngineConfig net;
  net.socket_path = s.config.socket_path;
  std::random_device random;
  net.net.isn_seed = (std::uint64_t{random()} << 32) | random();
  net.net.max_pending_flows = 256;  // SYNs wait while their upstream is dialled
  net.log = [impl = impl_.get()](std::string_view line) { impl->log(std::string("network: ") + std::string(line)); };
  ::unlink(s.config.socket_path.c_str());

  mitm::MitmContext::Options options;
  options.ca_common_name = "airlock VM CA " + s.config.vm_id;
  auto context = mitm::MitmContext::create(s.policy.network, options);
  if (!context) return Error{"can't set up the network policy: " + context.error()};
  s.mitm = std::move(*context);
  s.env = s.mitm->guest_env();
  s.pem = s.mitm->ca().certificate_pem();
  try {
    relay::EventSink sink = [impl = impl_.get()](relay::AuditEvent event) {
      if (impl->sink) impl->sink(std::move(event.type), std::move(event.data));
    };
    s.engine = std::make_unique<relay::NetworkEngine>(s.io, s.policy, net, sink);
    s.engine->set_handler_factory(relay::mitm_handler_factory(s.io, s.mitm, sink));
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
  asio::post(s.io, [impl = impl_.get()] {
    if (impl->engine) impl->engine->stop();
    impl->work.reset();
    impl->io.stop();
  });
  if (s.thread.joinable()) s.thread.join();
}

const std::map<std::string, std::string>& NetworkService::guest_env() const { return impl_->env; }
const std::string& NetworkService::ca_pem() const { return impl_->pem; }
const NetworkConfig& NetworkService::guest_nic() const { return impl_->nic; }

nlohmann::json NetworkService::counters_json() const {
  nlohmann::json counters = nlohmann::json::object();
  if (!impl_->engine) return counters;
  netstack::for_each_counter(impl_->engine->stack_counters(), [&](const char* name, std::uint64_t v) {
    if (v != 0) counters[name] = v;
  });
  return counters;
}

}  // namespace airlock::runtime
