// The host's TSC frequency, for TCG guests.
//
// A microvm has no HPET or PM timer, and TCG's CPU model reports no TSC frequency, so a
// Linux guest can't calibrate its TSC and hangs early in boot. Under TCG the guest reads
// the host's TSC, so the host measures it (rdtsc against CLOCK_MONOTONIC over ~50 ms) and
// passes it as tsc_early_khz=. Not needed under KVM (kvm-clock). x86-64 only: elsewhere
// the answer is "unknown".
#pragma once

#include <cstdint>
#include <optional>

namespace airlock::runtime {

std::optional<std::uint64_t> measure_host_tsc_khz();

}  // namespace airlock::runtime
