// Accelerator choice and KVM probe; see accel.hpp.
#include "runtime/vm/accel.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/vm/process.hpp"
#include "runtime/vm/qemu_argv.hpp"

namespace airlock::runtime {

namespace fs = std::filesystem;

Result<std::optional<Accel>> parse_accel_request(std::string_view value) {
  if (value.empty() || value == "auto") return std::optional<Accel>();
  if (value == "kvm") return std::optional<Accel>(Accel::kvm);
  if (value == "tcg") return std::optional<Accel>(Accel::tcg);
  return Error{"AIRLOCK_ACCEL must be auto, kvm or tcg, not '" + std::string(value) + "'"};
}

std::string accel_cache_key(const std::string& qemu_version, const fs::path& kernel,
                            std::int64_t kernel_mtime_ns) {
  return qemu_version + "|" + kernel.string() + "|" + std::to_string(kernel_mtime_ns);
}

std::optional<AccelChoice> accel_from_cache(std::string_view text, const std::string& key) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto k = j.find("key");
  auto a = j.find("accel");
  if (k == j.end() || !k->is_string() || k->get<std::string>() != key) return std::nullopt;
  if (a == j.end() || !a->is_string()) return std::nullopt;
  AccelChoice c;
  if (a->get<std::string>() == "kvm") {
    c.accel = Accel::kvm;
  } else if (a->get<std::string>() == "tcg") {
    c.accel = Accel::tcg;
  } else {
    return std::nullopt;
  }
  auto r = j.find("reason");
  c.reason = r != j.end() && r->is_string() ? r->get<std::string>() : "";
  c.from_cache = true;
  return c;
}

std::string accel_cache_text(const std::string& key, const AccelChoice& choice) {
  return nlohmann::json{{"key", key}, {"accel", accel_name(choice.accel)}, {"reason", choice.reason}}
             .dump(2) +
         "\n";
}

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  if (in) s << in.rdbuf();
  return s.str();
}

}  // namespace

Result<AccelChoice> choose_accel(const AccelProbeInputs& in) {
  Result<std::optional<Accel>> forced = parse_accel_request(in.request);
  if (!forced) return Error{forced.error()};
  if (forced->has_value()) {
    return AccelChoice{**forced, "forced by AIRLOCK_ACCEL=" + in.request, false};
  }

  const int fd = open(in.kvm_device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return AccelChoice{Accel::tcg, in.kvm_device.string() + " can't be opened: using TCG", false};
  }
  close(fd);

  std::error_code ec;
  const auto mtime = fs::last_write_time(in.kernel, ec);
  if (ec || !fs::exists(in.initramfs)) {
    return AccelChoice{Accel::tcg, "no kernel/initramfs to probe KVM with: using TCG", false};
  }
  const std::int64_t mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    mtime.time_since_epoch()).count();
  Result<CommandResult> version = run_command({in.qemu_binary, "--version"}, std::chrono::seconds(5));
  const std::string qemu_version = version && version->exit_code == 0 ? first_line(version->output)
                                                                      : in.qemu_binary;
  const std::string key = accel_cache_key(qemu_version, in.kernel, mtime_ns);
  if (!in.cache_file.empty()) {
    if (auto cached = accel_from_cache(read_file(in.cache_file), key)) return *cached;
  }

  // Probe boot: no disk, no control channel; guest-init powers off as soon as it runs.
  MachineConfig probe;
  probe.id = "probe";
  probe.qemu_binary = in.qemu_binary;
  probe.kernel = in.kernel;
  probe.initramfs = in.initramfs;
  probe.accel = Accel::kvm;
  probe.memory_mb = 256;
  probe.extra_cmdline = {{"probe", "1"}};
  Result<CommandResult> run = run_command(build_qemu_argv(probe), in.deadline);
  AccelChoice choice;
  if (!run) {
    choice = {Accel::tcg, "KVM probe could not start QEMU (" + run.error() + "): using TCG", false};
  } else if (run->timed_out) {
    choice = {Accel::tcg,
              "KVM probe boot did not finish within " + std::to_string(in.deadline.count()) +
                  " ms (KVM present but guests hang): using TCG",
              false};
  } else if (run->exit_code != 0) {
    choice = {Accel::tcg,
              "KVM probe boot failed (QEMU exit " + std::to_string(run->exit_code) + ": " +
                  first_line(run->output) + "): using TCG",
              false};
  } else {
    choice = {Accel::kvm,
              "KVM probe boot finished in " + std::to_string(run->elapsed.count()) + " ms: using KVM",
              false};
  }
  if (!in.cache_file.empty()) {
    const fs::path tmp = in.cache_file.string() + ".tmp";
    std::ofstream(tmp, std::ios::trunc) << accel_cache_text(key, choice);
    fs::rename(tmp, in.cache_file, ec);
  }
  return choice;
}

}  // namespace airlock::runtime
