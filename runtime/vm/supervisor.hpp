// The per-VM supervisor: owns one QEMU, its control channel, the API socket, the
// network and the audit log.
//
// Theory of operation: launch_vm() (in the CLI or RPC process) reserves the VM directory
// (or, to start a stopped VM again, finds it), writes launch.json (the kept config, no
// secret values) and starts a detached supervisor process: a double fork, setsid, and an
// exec of the airlock binary itself (`airlock supervise`), which reads its whole config,
// secrets included, from a pipe and never from disk. Exec (not a bare fork) because the
// caller may be an RPC server with threads and an Asio loop of its own. The supervisor
// runs run_supervisor() from inside the VM directory (every socket path is short and
// relative). It makes disk.qcow2 over the image's read-only rootfs (once: a restart keeps
// it), starts the network and then QEMU with PR_SET_PDEATHSIG (QEMU dies with it),
// connects to ctl.sock as soon as QEMU creates it, and waits for the guest's hello under
// a boot watchdog. It reports "booted" or the failure through a pipe to the waiting
// launcher, then serves api.sock.
//
// The work is split into services, each in its own file:
//   lifecycle_service  QEMU, boot watchdog, orderly stop, QMP (off the loop), state.json
//   router + exec_service + file_service   client requests <-> guest channels (pure)
//   event_service      the audit log, its seq index, recent events, live followers
//   network_service    the policed network, on its own thread (the only proxy/ user)
//   api_server, guest_channel   the two sockets' I/O; qmp_worker  QMP's thread
// Stop is orderly: guest shutdown, QMP quit after a grace period, SIGKILL last. When
// QEMU exits, the supervisor records "stopped" and exits.
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
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "policy/policy.hpp"
#include "runtime/vm/machine_config.hpp"

namespace airlock::runtime {

// One extra /etc/hosts line in the guest (add_hosts).
struct HostAlias {
  std::string name;
  std::string address;  // canonical IP text
};

struct SupervisorConfig {
  std::filesystem::path home;
  std::string id;                       // "" = generate one
  std::string image;                    // image name
  std::filesystem::path kernel, initramfs, rootfs;
  std::string rootfs_identity;          // size:mtime of rootfs.img when the disk was made
  // The sandbox's policy: resources, vfs, env and network. Secret values are in memory
  // only (launch.json keeps where each came from, never the value).
  policy::Policy policy;
  bool network = true;                  // false: no NIC at all
  // Benchmarks only: QEMU's user-mode network in place of airlock's (see bench/net).
  bool qemu_user_network = false;
  std::string hostname;                 // "" = the VM id
  std::vector<HostAlias> add_hosts;
  Accel accel = Accel::tcg;
  std::string accel_reason;
  std::chrono::milliseconds boot_timeout{60000};
  std::chrono::milliseconds stop_grace{5000};
  std::string qemu_binary = "qemu-system-x86_64";
  std::string qemu_img_binary = "qemu-img";
  // Set by start: the VM directory and its disk exist; boot them again.
  bool restart = false;
};

struct LaunchResult {
  std::string id;
  std::int64_t boot_ms = 0;
};

// Creates the VM (or restarts a stopped one), starts its supervisor and blocks until the
// guest has booted or the boot failed. Safe to call from any thread.
Result<LaunchResult> launch_vm(SupervisorConfig config);

// `airlock supervise`: the supervisor process's entry, reading its config from
// config_fd and reporting on ready_fd. Returns the process exit code.
int supervisor_main(int config_fd, int ready_fd);

// The supervisor's main loop; cwd must be the VM directory. ready_fd gets one JSON line
// ({"ok":true,"boot_ms":N} or {"ok":false,"error":"..."}) and is closed. Returns the
// process exit code.
int run_supervisor(const SupervisorConfig& config, int ready_fd);

}  // namespace airlock::runtime
