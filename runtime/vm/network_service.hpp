// The VM's policed network behind one small interface. Everything that touches proxy/
// lives in network_service.cpp, so the proxy's internals can change without the rest of
// the runtime noticing.
//
// Theory of operation: start() builds the MITM context (the VM's CA, the secrets, the
// request judge) and the network engine, listens on the socket QEMU's -netdev stream
// connects to (QEMU 7.2 connects once, at start-up, so this comes before QEMU starts),
// and runs the engine on a thread of its own: guest traffic never waits for the
// supervisor's loop (audit writes, state.json, API clients, QMP). The sink receives each
// event on that thread and must be thread-safe (the supervisor posts it to its loop).
// stop() ends the thread and closes every flow; counters_json() is meant for after it.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "policy/policy.hpp"
#include "runtime/vm/machine_config.hpp"

namespace airlock::runtime {

struct NetworkServiceConfig {
  std::filesystem::path socket_path;          // QEMU's -netdev stream connects here
  std::string vm_id;                          // names the VM's CA
  std::function<void(std::string_view)> log;  // one supervisor log line; any thread
};

// One event for the audit log: its type ("network", "dns") and the object under it.
using NetworkEventSink = std::function<void(std::string type, nlohmann::json data)>;

class NetworkService {
 public:
  NetworkService(const policy::Policy& policy, NetworkServiceConfig config, NetworkEventSink sink);
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
  // What the guest's network did: frames and every drop by reason (non-zero counters
  // only), so nothing is dropped silently. Read after stop().
  nlohmann::json counters_json() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::runtime
