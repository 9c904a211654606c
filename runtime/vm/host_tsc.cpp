// Host TSC measurement; see host_tsc.hpp.
#include "runtime/vm/host_tsc.hpp"

#include <time.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace airlock::runtime {

std::optional<std::uint64_t> measure_host_tsc_khz() {
#if defined(__x86_64__)
  auto now_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
  };
  const std::uint64_t t0 = now_ns();
  const std::uint64_t c0 = __rdtsc();
  timespec pause{0, 50 * 1000 * 1000};
  nanosleep(&pause, nullptr);
  const std::uint64_t c1 = __rdtsc();
  const std::uint64_t t1 = now_ns();
  if (t1 <= t0 || c1 <= c0) return std::nullopt;
  const std::uint64_t khz = (c1 - c0) * 1000000ull / (t1 - t0);
  if (khz < 100000 || khz > 20000000) return std::nullopt;  // implausible: say unknown
  return khz;
#else
  return std::nullopt;
#endif
}

}  // namespace airlock::runtime
