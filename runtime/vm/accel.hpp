// Choosing the accelerator: KVM where it really works, TCG otherwise.
//
// A /dev/kvm that opens is not enough: some hosts have one that hangs guests right after
// kernel decompression. So "auto" boots the image's kernel + initramfs once with
// airlock.probe=1 (guest-init powers off at once) and picks KVM only if QEMU exits 0
// before a short deadline; a stuck probe is killed at the deadline. The verdict is cached
// in $AIRLOCK_HOME/accel.json keyed by the QEMU version and the kernel's path and mtime,
// so the probe runs once per (QEMU, kernel) pair. AIRLOCK_ACCEL=kvm|tcg skips all this.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "runtime/vm/machine_config.hpp"

namespace airlock::runtime {

struct AccelChoice {
  Accel accel = Accel::tcg;
  std::string reason;   // one line, for logs: why this accelerator
  bool from_cache = false;
};

struct AccelProbeInputs {
  std::string qemu_binary = "qemu-system-x86_64";
  std::filesystem::path kernel;
  std::filesystem::path initramfs;
  std::filesystem::path cache_file;   // accel.json
  std::filesystem::path kvm_device = "/dev/kvm";
  std::chrono::milliseconds deadline{8000};
  std::string request;                // AIRLOCK_ACCEL value: "", "auto", "kvm" or "tcg"
};

// Parses AIRLOCK_ACCEL. "" and "auto" give nullopt (probe); anything else is an error.
Result<std::optional<Accel>> parse_accel_request(std::string_view value);

// The cache key: "<qemu version line>|<kernel path>|<kernel mtime ns>".
std::string accel_cache_key(const std::string& qemu_version, const std::filesystem::path& kernel,
                            std::int64_t kernel_mtime_ns);

// Decision from the cache file's text for a key, if it matches. Pure.
std::optional<AccelChoice> accel_from_cache(std::string_view cache_text, const std::string& key);
std::string accel_cache_text(const std::string& key, const AccelChoice& choice);

// The full decision (may run QEMU once). Errors only for a bad AIRLOCK_ACCEL value.
Result<AccelChoice> choose_accel(const AccelProbeInputs& inputs);

}  // namespace airlock::runtime
