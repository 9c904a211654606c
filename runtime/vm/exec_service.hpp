// The exec half of the router's rules (sans-IO, pure): what happens to an exec request
// on its way to the guest and what its end leaves in the audit log.
//
// Every exec gets the base environment (the policy's env, the network's placeholders
// and CA variables) under the variables its request sets itself; a request whose env is
// not an object goes on unchanged for the guest to refuse. While the exec runs its
// command line (argv shell-quoted, or the shell string) and start time are kept; its end
// (exit, or an error before it started) becomes one exec audit event, emitted before the
// reply reaches the client, so a client that has seen the exit finds it in the log.
// In flight the client may send signal, resize and cancel (no reply) and stdin_data.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace airlock::runtime {

class ExecService {
 public:
  struct Running {
    std::string command;
    std::int64_t started_ms = 0;
  };

  void set_base_env(std::map<std::string, std::string> env) { base_env_ = std::move(env); }
  const std::map<std::string, std::string>& base_env() const { return base_env_; }

  // The payload that goes to the guest for this request.
  std::string guest_payload(const nlohmann::json& request, const std::string& payload) const;

  static Running begin(const nlohmann::json& request, std::int64_t now_ms);
  // A control reply on the exec's channel; the audit event body when it ended the exec.
  static std::optional<nlohmann::json> on_reply(const Running& exec, const std::string& op,
                                                const nlohmann::json& reply, std::int64_t now_ms);
  // Ops a client may send on the channel of a running exec.
  static bool is_in_flight_op(const std::string& op);

  // argv (or a shell string) as one POSIX-shell-safe line, for the audit log.
  static std::string shell_join(const nlohmann::json& exec_request);

 private:
  std::map<std::string, std::string> base_env_;
};

}  // namespace airlock::runtime
