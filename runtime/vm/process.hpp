// Child processes for the runtime: QEMU, qemu-img and the accelerator probe.
//
// spawn() forks and execs with stdio redirected and, when asked, PR_SET_PDEATHSIG so the
// child dies with the supervisor (a QEMU must never outlive the process that owns its
// VM), and in a user namespace. Between fork and exec the child only makes system calls
// (everything it writes is formatted before the fork), so spawning from a process with
// threads is safe. run_command() runs to completion with a hard deadline: on expiry the child is
// SIGKILLed and reaped, so a stuck QEMU (a hung KVM guest) can't hang the caller.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace airlock::runtime {

// A user namespace for the child in which the caller's own uid and gid (and only they)
// appear as inside_uid / inside_gid. Nothing else is mapped, so the child has no
// privilege over anyone else's files, even if the caller is root.
struct UserNamespace {
  std::uint32_t inside_uid = 1000;
  std::uint32_t inside_gid = 1000;
};

struct SpawnOptions {
  int stdin_fd = -1;          // -1 = /dev/null
  int stdout_fd = -1;         // -1 = /dev/null
  int stderr_fd = -1;         // -1 = /dev/null
  bool die_with_parent = false;
  std::optional<UserNamespace> user_namespace;  // the child exits 126 if it can't enter it
};

// Returns the child's pid, or an error if fork failed. An exec failure makes the child
// exit with 127 (and a line on its stderr).
Result<pid_t> spawn(const std::vector<std::string>& argv, const SpawnOptions& options);

struct CommandResult {
  int exit_code = -1;        // 128+N for a signal death
  bool timed_out = false;
  std::string output;        // stdout and stderr, interleaved, capped at 64 KiB
  std::chrono::milliseconds elapsed{0};
};

Result<CommandResult> run_command(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds deadline);

// Whether this process may create a user namespace mapping its own ids (a throwaway
// child tries). Some hosts forbid unprivileged user namespaces.
bool user_namespaces_work();

// Finds an executable in $PATH (or returns name itself if it has a '/').
std::string find_executable(const std::string& name);

}  // namespace airlock::runtime
