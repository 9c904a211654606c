// Boot: from the kernel handing control to /init in the initramfs to a ready guest.
//
// Theory of operation, in order:
//   1. early_mounts(): devtmpfs on /dev, proc, sysfs; stdio reopened on /dev/console
//      (an initramfs without a console node leaves PID 1 with no stdio at all).
//   2. load_modules(): each path in /etc/airlock-modules, in order, with finit_module(2)
//      (compressed modules are handed to the kernel to decompress). Already-loaded or
//      built-in modules are fine; any other failure is logged and the boot goes on (the
//      wait for the disk says whether it mattered).
//   3. switch_root(): waits for /dev/vda, mounts it (ext4) on /newroot, moves /dev,
//      /proc and /sys into it, deletes the initramfs contents (they would pin RAM),
//      moves the new root onto / and chroots, like switch_root(8). guest-init keeps
//      running from memory as PID 1.
//   4. late_mounts(): devpts (private instance), /dev/shm, /tmp, /run, cgroup2, and the
//      /dev/fd, /dev/std* links.
//   5. configure_host(): hostname, /etc/hostname, /etc/hosts.
//   6. prepare_workspace(): creates the workspace owned by the sandbox user, then the
//      9p shares (read-only ones mounted read-only here too; the host enforces it anyway).
// Each step returns false only when the guest cannot work without it; the caller then
// powers off so the host sees a dead VM instead of one that never says hello.
#pragma once

#include "guest-init/cmdline.hpp"

namespace airlock::guest {

bool early_mounts();
void load_modules(const char* list_path);
bool switch_root(const char* device, const char* fstype);
void late_mounts();
void configure_host(const BootConfig& config);
void prepare_workspace(const BootConfig& config);

// Milliseconds since the kernel started (from /proc/uptime).
long long uptime_ms();

}  // namespace airlock::guest
