// Capabilities, ids, no_new_privs and seccomp for exec'd processes (see sandbox.hpp).
#include "guest-init/sandbox.hpp"

#include <cerrno>
#include <sched.h>

#include <grp.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace airlock::guest {

std::vector<SeccompRule> seccomp_rules() {
  std::vector<SeccompRule> rules;
  for (const char* name : {
           // debugging other processes and reading their memory
           "ptrace", "process_vm_readv", "process_vm_writev",
           // replacing or extending the kernel
           "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
           // the mount table (guest-init's mounts, the 9p shares)
           "mount", "umount2", "pivot_root", "move_mount", "fsopen", "fsmount", "fsconfig",
           "fspick", "open_tree", "mount_setattr",
           // large kernel attack surfaces an agent has no need for
           "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
           // the machine itself
           "reboot", "swapon", "swapoff", "iopl", "ioperm",
           // namespaces: a new user namespace would hand back every capability
           "unshare", "setns",
       }) {
    rules.push_back({name, EPERM, 0});
  }
  // clone3 passes its flags in memory the filter cannot read: make libc fall back to
  // clone, whose flags are a register the rules below can check.
  rules.push_back({"clone3", ENOSYS, 0});
  for (std::uint64_t flag : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
                             CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME}) {
    rules.push_back({"clone", EPERM, flag});
  }
  return rules;
}

std::vector<int> dangerous_capabilities() {
  return {CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_PTRACE, CAP_SYS_RAWIO, CAP_SYS_BOOT,
          CAP_MKNOD,     CAP_NET_ADMIN,  CAP_SYS_TIME,   CAP_MAC_ADMIN, CAP_MAC_OVERRIDE,
          CAP_BPF,       CAP_PERFMON,    CAP_SYSLOG,     CAP_SYS_RESOURCE, CAP_AUDIT_CONTROL,
          CAP_LINUX_IMMUTABLE, CAP_DAC_READ_SEARCH, CAP_SETPCAP};
}

namespace {

int load_seccomp() {
  // Default allow; the denied list is explicit. A foreign-arch syscall (int 0x80, x32)
  // would bypass name-based rules, so it kills the process instead.
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return ENOMEM;
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  for (const SeccompRule& rule : seccomp_rules()) {
    if (rc != 0) break;
    const int nr = seccomp_syscall_resolve_name(rule.syscall.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // not on this kernel/arch: nothing to deny
    if (rule.clone_flag_mask != 0) {
      const scmp_arg_cmp cmp{0, SCMP_CMP_MASKED_EQ, rule.clone_flag_mask, rule.clone_flag_mask};
      rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(static_cast<std::uint32_t>(rule.error)), nr, 1, &cmp);
    } else {
      rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(static_cast<std::uint32_t>(rule.error)), nr, 0, nullptr);
    }
  }
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  return rc < 0 ? -rc : rc;
}

}  // namespace

int apply_sandbox(const SandboxRequest& request, const char** stage) {
  if (!request.privileged) {
    *stage = "capability bounding set";
    if (request.uid != 0) {
      for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
      }
    } else {
      for (int cap : dangerous_capabilities()) {
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
      }
    }
  }
  *stage = "setgroups";
  if (::setgroups(0, nullptr) != 0) return errno;
  *stage = "setgid";
  if (::setgid(request.gid) != 0) return errno;
  *stage = "setuid";
  if (::setuid(request.uid) != 0) return errno;
  if (request.privileged) return 0;
  *stage = "no_new_privs";
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  *stage = "seccomp";
  return load_seccomp();
}

}  // namespace airlock::guest
