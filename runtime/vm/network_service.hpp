// The VM's policed network behind one small interface. Everything that touches proxy/
// lives in network_service.cpp, so the proxy's internals can change without the rest of
// the runtime noticing.
//
// Theory of operation: start() builds the MITM context (the VM's CA, the secrets, the
// request judge) and the network engine, listens on the socket QEMU's -netdev stream
// connects to (QEMU 7.2 connects once, at start-up, so this comes before QEMU starts),
// and runs the engine on a thread of its own: guest traffic never waits for the
// supervisor's loop (audit writes, state.json, API clients, QMP) except by the audit
// queue's choice. Each network and DNS event goes into an audit::EventQueue sized and
// run as the policy's `audit:` section says (block: the network waits for the writer;
// drop: the loss is counted and recorded as events_lost); on_events runs on the network
// thread when a batch is waiting, and the supervisor takes it with take_events() on its
// loop. stop() unblocks the queue, ends the thread and closes every flow; what the
// flows' endings recorded is then in take_events(), and counters_json() tells the rest.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "audit/events.hpp"
#include "common/result.hpp"
#include "policy/policy.hpp"
#include "runtime/vm/machine_config.hpp"

namespace airlock::runtime {

struct NetworkServiceConfig {
  std::filesystem::path socket_path;          // QEMU's -netdev stream connects here
  std::string vm_id;                          // names the VM's CA
  std::function<void(std::string_view)> log;  // one supervisor log line; any thread
  std::function<void()> on_events;            // a batch waits for take_events(); network thread
};

class NetworkService {
 public:
  NetworkService(const policy::Policy& policy, NetworkServiceConfig config);
  ~NetworkService();  // stop()
  NetworkService(const NetworkService&) = delete;
  NetworkService& operator=(const NetworkService&) = delete;

  // Listens on socket_path and starts the network thread; an error says why not.
  Result<bool> start();
  // Ends the thread and every flow. Idempotent.
  void stop();

  // Valid after a successful start() and immutable afterwards (safe from any thread).
  // The variables every exec gets: secret placeholders and the CA bundle variables.
  const std::map<std::string, std::string>& guest_env() const;
  // The VM's CA certificate, for the guest to trust.
  const std::string& ca_pem() const;
  // The guest's addressing, for the kernel command line and QEMU's NIC.
  const NetworkConfig& guest_nic() const;
  // The events waiting, in order, with events_lost records where the queue dropped any.
  std::vector<audit::Event> take_events();
  // What the guest's network did: frames and every drop by reason (non-zero counters
  // only), so nothing is dropped silently, and the audit queue's figures. After stop().
  nlohmann::json counters_json() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::runtime
