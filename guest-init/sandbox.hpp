// The in-guest restrictions applied to an exec between fork and execve.
//
// Theory of operation: the VM is the real isolation boundary; this layer keeps the
// untrusted process from tampering with the guest's plumbing (guest-init, the control
// port, kernel modules, mounts) and from the kernel's riskiest surfaces. A sandboxed
// exec gets, in this order (each step needs the privilege the next one removes):
//   1. capability bounding set: every capability dropped for a non-root user; for a
//      sandboxed root the dangerous ones (kDangerousCaps), so root keeps file ownership
//      powers but cannot load modules, mount, trace, or reconfigure the machine;
//   2. setgroups(0) / setgid / setuid to the requested ids (caps vanish for non-root);
//   3. PR_SET_NO_NEW_PRIVS, so setuid binaries and file caps cannot win them back;
//   4. a seccomp filter (libseccomp): the syscalls of seccomp_rules() fail with their
//      errno (EPERM, ENOSYS for clone3 so libc falls back to clone whose flags the
//      filter can inspect), any non-native architecture (i386, x32) kills the process.
// A privileged exec skips all four but still changes ids if a user was asked for.
// Refuses: nothing at runtime; any failure aborts the exec (reported to the host).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace airlock::guest {

struct SeccompRule {
  std::string syscall;
  int error;                        // errno returned
  std::uint64_t clone_flag_mask = 0;  // nonzero: only when (arg0 & mask) == mask
};

// The denied syscalls (pure; unit-tested).
std::vector<SeccompRule> seccomp_rules();

// Capability numbers dropped from the bounding set for a sandboxed root.
std::vector<int> dangerous_capabilities();

struct SandboxRequest {
  bool privileged = false;
  std::uint32_t uid = 1000;
  std::uint32_t gid = 1000;
};

// Applies the restrictions to the calling process (a forked child). Returns 0 or an
// errno, with *stage naming the failing step for the error message.
int apply_sandbox(const SandboxRequest& request, const char** stage);

}  // namespace airlock::guest
