// Registration of the CLI's command groups; each group lives in its own file.
#pragma once

#include <CLI/CLI.hpp>

#include "policy/overrides.hpp"

namespace airlock::cli {

// Exit codes shared by all commands.
inline constexpr int kExitUsage = 2;      // bad flags, bad policy file, bad arguments
inline constexpr int kExitRuntime = 125;  // airlock itself failed (VM, image, I/O)

// The exit code of the command that ran (commands run inside CLI11 callbacks).
int exit_code();
void set_exit_code(int code);

// The policy-shaping flags every command that builds a sandbox accepts:
// --policy, --allow-host, --secret, -v, -e, --cpus, --memory, --timeout.
struct PolicyFlags {
  std::string policy_file;
  policy::CliOverrides overrides;
};
void add_policy_flags(CLI::App& command, PolicyFlags& flags, bool with_policy_option = true);
// Loads the file (if any), applies the overrides. Throws policy::PolicyError.
policy::Policy build_policy(const PolicyFlags& flags);

void register_policy_commands(CLI::App& app);
void register_vm_commands(CLI::App& app);     // runtime/cli/vm_commands.cpp
void register_debug_commands(CLI::App& app);  // runtime/cli/debug_commands.cpp
void register_proxy_commands(CLI::App& app);  // runtime/cli/proxy_commands.cpp
void register_api_commands(CLI::App& app);    // runtime/cli/api_commands.cpp

}  // namespace airlock::cli
