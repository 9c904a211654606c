// Sandbox lifecycle operations on an airlock home, shared by the CLI commands and the
// JSON-RPC server: create, start (a stopped one again), stop, remove, list, get.
//
// Blocking calls (a create waits for the boot); the RPC server runs them on worker
// threads. Every failure is a SandboxError with its kind (sandbox_error.hpp). A sandbox
// is found by its id or a unique prefix of it.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/policy.hpp"
#include "runtime/vm/sandbox_error.hpp"
#include "runtime/vm/supervisor.hpp"
#include "runtime/vm/vm_store.hpp"

namespace airlock::runtime {

struct CreateOptions {
  bool network = true;                 // false: no NIC at all
  std::string hostname;                // "" = the VM id
  std::vector<HostAlias> add_hosts;
  // Lines of an image build the create may have to run first (none: stderr).
  std::function<void(std::string_view)> progress;
};

struct SandboxInfo {
  std::string id;
  std::string status;                  // creating | running | stopping | stopped | failed | unknown
  VmState state;                       // as state.json has it (empty when unreadable)
  std::string error;                   // why the state is unreadable, or why it failed
  bool alive = false;                  // the supervisor process exists
  VmPaths paths;
};

// An id or a unique prefix; vm_not_found otherwise.
std::string resolve_sandbox_id(const std::filesystem::path& home, std::string_view wanted);

LaunchResult create_sandbox(const std::filesystem::path& home, const policy::Policy& policy,
                            const CreateOptions& options);
// Boots a stopped sandbox again with its disk and kept config. Secrets given as values at
// create must be passed again in given (NAME -> value); those from environment variables
// are read again with env.
LaunchResult start_sandbox(const std::filesystem::path& home, const std::string& id,
                           const std::map<std::string, std::string>& given, const policy::EnvLookup& env);
// An orderly stop; returns once the supervisor is gone. A stopped sandbox is fine.
void stop_sandbox(const std::filesystem::path& home, const std::string& id);
// Stops (if running) and deletes; "removed" is logged first, and before_delete sees the
// log before it goes (run --events copies its tail).
void remove_sandbox(const std::filesystem::path& home, const std::string& id,
                    const std::function<void(const std::filesystem::path&)>& before_delete = nullptr);

SandboxInfo inspect_sandbox(const std::filesystem::path& home, const std::string& id);
std::vector<SandboxInfo> list_sandboxes(const std::filesystem::path& home);
// The kept config of a sandbox (launch.json, no secret values), or nullopt.
std::optional<nlohmann::json> kept_config(const std::filesystem::path& home, const std::string& id);

// A guest host name: letters, digits and '-' in dot-separated labels (invalid_config).
std::string check_hostname(std::string_view name);
// "NAME:IP" as in docker's --add-host (invalid_config).
HostAlias parse_add_host(std::string_view text);

// What the audit log and `ls` show of an image's rootfs, to notice a rebuilt image.
std::string file_identity(const std::filesystem::path& file);

}  // namespace airlock::runtime
