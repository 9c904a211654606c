// Loading policy files (YAML) into a Policy.
//
// Strict by design: every key must be known (a typo is an error with a suggestion),
// every value must have the right type and range, duplicate keys are errors, and each
// message names the file, line, column and key path ("policy.yaml:7:5:
// network.allowed_hosts[1]: invalid host pattern: ..."). Relative paths
// (policy_script, upstream_ca_file, mount host paths) are resolved against the policy
// file's folder and must exist. Defaults are those of docs/policy.md.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "policy/policy.hpp"

namespace airlock::policy {

Policy load_policy_file(const std::filesystem::path& file, const EnvLookup& env = process_env());

// source_name appears in error messages; base_dir anchors relative paths.
Policy load_policy_text(std::string_view yaml, const std::string& source_name,
                        const std::filesystem::path& base_dir,
                        const EnvLookup& env = process_env());

// Value parsers shared with the CLI overrides. Each throws PolicyError with a message
// that does not name a file (the caller adds its own context).
std::uint32_t parse_size_mb(std::string_view text);   // "512", "512M", "2G", "1.5GiB"
std::uint32_t check_memory_mb(std::uint32_t mb);      // range check, returns mb
std::uint32_t check_disk_mb(std::uint32_t mb);
double parse_cpus(std::string_view text);
std::uint32_t parse_timeout_seconds(std::string_view text);  // "300", "300s", "5m", "1h"
std::uint32_t parse_audit_queue_events(std::string_view text);  // 1 .. 1048576
bool is_valid_env_name(std::string_view name);
// Guest path of a mount: relative to the workspace unless already inside it.
std::string mount_guest_path(std::string_view guest, const std::string& workspace);

}  // namespace airlock::policy
