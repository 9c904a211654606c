// Orderly power-off of the guest.
//
// Every process but PID 1 gets SIGTERM, then kShutdownGrace to exit (reaped meanwhile),
// then SIGKILL. Then filesystems are synced, everything but / is unmounted innermost
// first (lazily, so a busy mount cannot hang the shutdown), / is remounted read-only
// and the machine powers off; with QEMU's -no-reboot the VM process exits. Never
// returns: PID 1 must not exit (the kernel would panic).
#pragma once

#include <chrono>

namespace airlock::guest {

inline constexpr std::chrono::seconds kShutdownGrace{2};

[[noreturn]] void shutdown_and_power_off();
// For early boot (nothing to stop or unmount): sync and power off.
[[noreturn]] void power_off_now();

}  // namespace airlock::guest
