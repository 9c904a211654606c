// The launcher's inputs: everything needed to turn one VM into a QEMU command line.
//
// Plain data, filled by the supervisor from the CLI flags and policy; build_qemu_argv()
// (qemu_argv.hpp) is the only consumer. Paths may be relative: the supervisor runs QEMU
// from the VM's own directory so socket paths stay short (a Unix socket path is capped at
// 108 bytes). The network is an optional seam: without it the VM gets no NIC at all.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace airlock::runtime {

enum class Accel { kvm, tcg };

const char* accel_name(Accel accel);

// One host folder shared into the guest over virtio-9p.
struct MountSpec {
  std::string tag;                  // 9p mount tag; "" = "fs<index>"
  std::filesystem::path host_path;  // absolute
  std::string guest_path;           // absolute guest path
  bool readonly = false;
};

// Guest NIC wired to a Unix stream socket of the supervisor (QEMU -netdev stream).
// Filled in once the network proxy lands; absent means "no NIC".
struct NetworkConfig {
  std::filesystem::path socket_path;
  // QEMU's own user-mode network instead of airlock's: for benchmarks only (bench/net
  // compares the two); nothing is policed on it.
  bool qemu_user_mode = false;
  std::string mac = "52:54:00:12:34:56";
  std::uint32_t mtu = 1500;
  std::string guest_ip;     // CIDR, e.g. 10.0.2.15/24
  std::string gateway_ip;
  std::string dns;
};

struct MachineConfig {
  std::string id;
  std::string qemu_binary = "qemu-system-x86_64";
  std::filesystem::path kernel;     // bzImage, or an uncompressed vmlinux (PVH entry)
  std::filesystem::path initramfs;
  std::filesystem::path disk;       // qcow2 layer; empty = no root disk (probe boots)
  double cpus = 1;                  // fractional cpus round up to whole vCPUs
  std::uint32_t memory_mb = 512;
  Accel accel = Accel::tcg;
  // Host TSC frequency; under TCG the guest needs it (see host_tsc.hpp).
  std::optional<std::uint64_t> tsc_khz;
  std::vector<MountSpec> mounts;
  std::string workspace = "/workspace";
  std::string hostname;             // "" = id
  // Extra /etc/hosts entries in the guest: (name, IP address text).
  std::vector<std::pair<std::string, std::string>> extra_hosts;
  // Extra airlock.<key>=<value> kernel arguments (e.g. {"probe","1"}), in order.
  std::vector<std::pair<std::string, std::string>> extra_cmdline;
  std::filesystem::path console_log;
  std::filesystem::path ctl_socket;
  std::filesystem::path qmp_socket; // empty = no QMP monitor
  std::optional<NetworkConfig> network;
};

}  // namespace airlock::runtime
