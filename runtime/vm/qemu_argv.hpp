// Pure translation of a MachineConfig into QEMU's argv and the guest kernel command line.
//
// No I/O: the result depends only on the config, so the whole command line is unit
// tested. The machine is a microvm with -nodefaults (no emulated PC devices, no NIC
// unless a NetworkConfig is given) and virtio-mmio devices only. Values that would need
// quoting on the kernel command line (spaces, quotes, the ':' and ',' separators of
// airlock.mounts) are refused with std::invalid_argument rather than escaped: guest-init
// parses the command line with a plain split, and a refusal at setup is clearer than a
// mount that silently lands elsewhere.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "runtime/vm/machine_config.hpp"

namespace airlock::runtime {

// True if value can sit in a kernel argument as is (no escaping needed by guest-init).
bool is_cmdline_safe(std::string_view value);

// Encodes the 9p mounts as the value of airlock.mounts: "TAG:GUEST:ro|rw,...".
// Tags default to fs<index>. An error names the offending mount.
Result<std::string> encode_mounts_cmdline(const std::vector<MountSpec>& mounts);

// Encodes extra /etc/hosts entries as the value of airlock.hosts: "NAME:IP,...". An
// error names the entry with characters a host name or IP address can't have.
Result<std::string> encode_hosts_cmdline(const std::vector<std::pair<std::string, std::string>>& hosts);

// The whole -append string: console and panic settings, then airlock.* keys.
// Throws std::invalid_argument for a value that is not cmdline safe.
std::string build_kernel_cmdline(const MachineConfig& config);

// QEMU's option syntax splits on ',': a literal comma inside a value is doubled.
std::string qemu_escape(std::string_view value);

// The full argv, argv[0] = config.qemu_binary. Throws std::invalid_argument for a
// config that can't be expressed (see above).
std::vector<std::string> build_qemu_argv(const MachineConfig& config);

}  // namespace airlock::runtime
