// The seccomp deny list and capability list (the filter itself is exercised in a VM).
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include <linux/capability.h>
#include <seccomp.h>

#include "guest-init/sandbox.hpp"

using namespace airlock::guest;

TEST_CASE("the deny list covers the contract's syscalls, all resolvable on this arch") {
  std::set<std::string> names;
  for (const auto& rule : seccomp_rules()) {
    names.insert(rule.syscall);
    CHECK_MESSAGE(seccomp_syscall_resolve_name(rule.syscall.c_str()) != __NR_SCMP_ERROR, rule.syscall);
  }
  for (const char* required :
       {"ptrace", "process_vm_readv", "process_vm_writev", "kexec_load", "kexec_file_load", "init_module",
        "finit_module", "delete_module", "mount", "umount2", "pivot_root", "move_mount", "fsopen", "fsmount",
        "open_tree", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "reboot",
        "swapon", "swapoff", "iopl", "ioperm", "unshare", "setns", "clone3"}) {
    CHECK_MESSAGE(names.count(required) == 1, required);
  }
}

TEST_CASE("clone3 gets ENOSYS so libc falls back to clone; clone is denied only with namespace flags") {
  for (const auto& rule : seccomp_rules()) {
    if (rule.syscall == "clone3") CHECK(rule.error == ENOSYS);
    else CHECK(rule.error == EPERM);
    if (rule.syscall == "clone") CHECK(rule.clone_flag_mask != 0);
    else CHECK(rule.clone_flag_mask == 0);
  }
}

TEST_CASE("a sandboxed root loses the capabilities the contract names") {
  const auto caps = dangerous_capabilities();
  for (int cap : {CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_PTRACE, CAP_SYS_RAWIO, CAP_SYS_BOOT, CAP_MKNOD,
                  CAP_NET_ADMIN, CAP_SYS_TIME, CAP_MAC_ADMIN, CAP_BPF, CAP_PERFMON}) {
    CHECK(std::count(caps.begin(), caps.end(), cap) == 1);
  }
}
