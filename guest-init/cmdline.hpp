// Boot configuration from the kernel command line (the `airlock.*` keys).
//
// The host controls the command line, so the parser is lenient: unknown airlock.* keys
// and malformed values are skipped with a warning (collected in `warnings`) rather than
// stopping the boot, because a guest that does not boot is harder to diagnose than one
// that boots and says what it ignored. Pure: unit-tested without a VM.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::guest {

struct ShareMount {
  std::string tag;         // virtio-9p mount_tag
  std::string guest_path;  // absolute
  bool read_only = false;
};

struct BootConfig {
  std::string hostname = "airlock";
  std::string workspace = "/workspace";
  std::vector<ShareMount> mounts;
  bool probe = false;
  std::uint32_t uid = 1000;  // the sandbox user ("airlock")
  std::vector<std::string> warnings;
};

// Splits a kernel command line into words, honouring double quotes like the kernel does.
std::vector<std::string> split_cmdline(std::string_view cmdline);

// Parses `airlock.*` keys; everything else is the kernel's business and is ignored.
BootConfig parse_cmdline(std::string_view cmdline);

// Parses one airlock.mounts entry "TAG:GUESTPATH[:ro|rw]"; false if malformed.
bool parse_share_mount(std::string_view text, ShareMount& out);

}  // namespace airlock::guest
