// Child processes for the runtime: QEMU, qemu-img and the accelerator probe.
//
// spawn() forks and execs with stdio redirected and, when asked, PR_SET_PDEATHSIG so the
// child dies with the supervisor (a QEMU must never outlive the process that owns its
// VM). run_command() runs to completion with a hard deadline: on expiry the child is
// SIGKILLed and reaped, so a stuck QEMU (a hung KVM guest) can't hang the caller.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace airlock::runtime {

struct SpawnOptions {
  int stdin_fd = -1;          // -1 = /dev/null
  int stdout_fd = -1;         // -1 = /dev/null
  int stderr_fd = -1;         // -1 = /dev/null
  bool die_with_parent = false;
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

// Finds an executable in $PATH (or returns name itself if it has a '/').
std::string find_executable(const std::string& name);

}  // namespace airlock::runtime
