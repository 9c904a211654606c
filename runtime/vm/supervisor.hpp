// The per-VM supervisor: owns one QEMU, its control channel, the API socket and the
// audit log.
//
// Theory of operation: launch_vm() (in the CLI process) reserves the VM directory and
// double-forks a session leader whose stdio goes to supervisor.log; that process runs
// run_supervisor() from inside the VM directory (so every socket path is short and
// relative). It creates disk.qcow2 over the image's read-only rootfs, starts QEMU with
// PR_SET_PDEATHSIG (QEMU dies with it), connects to ctl.sock as soon as QEMU creates it,
// and waits for the guest's hello under a boot watchdog. It reports "booted" or the
// failure through a pipe to the waiting CLI, then serves api.sock: the Router (sans-IO)
// remaps client channels onto the guest channel and the audit log records lifecycle,
// exec and file events. Stop is orderly: guest shutdown, QMP quit after a grace period,
// SIGKILL last. When QEMU exits, the supervisor records "stopped" and exits.
//
// Limits: one guest connection; flow control is coarse (reading from the guest pauses
// while any client is far behind, reading from clients pauses while the guest is).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "policy/policy.hpp"
#include "runtime/vm/machine_config.hpp"

namespace airlock::runtime {

struct SupervisorConfig {
  std::filesystem::path home;
  std::string id;
  std::string image;                    // image name, for state.json
  std::filesystem::path kernel, initramfs, rootfs;
  double cpus = 1;
  std::uint32_t memory_mb = 512;
  std::uint32_t disk_size_mb = 5120;
  std::vector<MountSpec> mounts;
  std::string workspace = "/workspace";
  Accel accel = Accel::tcg;
  std::string accel_reason;
  std::chrono::milliseconds boot_timeout{60000};
  std::chrono::milliseconds stop_grace{5000};
  std::string qemu_binary = "qemu-system-x86_64";
  std::string qemu_img_binary = "qemu-img";
  nlohmann::json config_json = nlohmann::json::object();  // for state.json (no secrets)
  // The policy's env: every exec gets it unless its request sets the variable itself.
  // In memory only, like `network`.
  std::map<std::string, std::string> env;
  // The guest's network and the policy that polices it; nullopt = no NIC at all. Held in
  // memory only (it may carry secret values): the supervisor inherits it across fork.
  std::optional<policy::Policy> network;
  // Benchmarks only: QEMU's user-mode network in place of airlock's (see bench/net).
  bool qemu_user_network = false;
};

struct LaunchResult {
  std::string id;
  std::int64_t boot_ms = 0;
};

// Creates the VM (its id is generated unless config.id is set), starts its supervisor
// and blocks until the guest has booted or the boot failed.
Result<LaunchResult> launch_vm(SupervisorConfig config);

// The supervisor's main loop; cwd must be the VM directory. ready_fd gets one JSON line
// ({"ok":true,"boot_ms":N} or {"ok":false,"error":"..."}) and is closed. Returns the
// process exit code.
int run_supervisor(const SupervisorConfig& config, int ready_fd);

}  // namespace airlock::runtime
