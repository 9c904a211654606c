// Where VMs live on disk: the airlock home, one directory per VM, VM ids and state.json.
//
// state.json is written by the VM's supervisor (atomically: temp file + rename) and read
// by every CLI command, so its parser treats the file as possibly truncated or hand
// edited: a malformed file gives an error naming the file and the field, never a crash.
// A VM whose supervisor is gone is reported as "stopped" whatever state.json says (the
// supervisor may have been killed before it could write its last word).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace airlock::runtime {

// $AIRLOCK_HOME, else $XDG_DATA_HOME/airlock, else ~/.local/share/airlock.
std::filesystem::path airlock_home();

struct VmPaths {
  std::filesystem::path dir, state, api_sock, ctl_sock, qmp_sock, console_log, disk, events,
      supervisor_log;
};
VmPaths vm_paths(const std::filesystem::path& home, const std::string& id);

// "vm-" + 8 lowercase hex digits from the system's CSPRNG.
std::string generate_vm_id();
bool is_valid_vm_id(std::string_view id);

struct VmState {
  std::string id;
  std::int64_t pid = 0;           // the supervisor's pid
  std::string status;             // creating | running | stopping | stopped | failed
  std::int64_t created = 0;       // unix ms
  std::string image;
  nlohmann::json config = nlohmann::json::object();  // normalised, secrets redacted
  std::optional<std::int64_t> boot_ms;
  std::string accel;
  std::string error;              // why it failed, if it did
};

Result<VmState> parse_vm_state(std::string_view text);
std::string serialize_vm_state(const VmState& state);

// Reads and parses a VM's state.json; errors name the file.
Result<VmState> read_vm_state(const std::filesystem::path& file);
// Writes state.json atomically. Returns false (with errno set) on failure.
bool write_vm_state(const std::filesystem::path& file, const VmState& state);

// True if pid names a live process (not a zombie).
bool process_alive(std::int64_t pid);

// The status to show: a dead supervisor means "stopped" unless it recorded "failed".
std::string effective_status(const VmState& state, bool supervisor_alive);

// Ids of the VM directories under home/vms, sorted.
std::vector<std::string> list_vm_ids(const std::filesystem::path& home);

std::int64_t unix_millis();

}  // namespace airlock::runtime
