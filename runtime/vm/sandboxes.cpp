// Sandbox lifecycle operations; see sandboxes.hpp.
#include "runtime/vm/sandboxes.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "policy/ip_address.hpp"
#include "runtime/vm/accel.hpp"
#include "runtime/vm/audit_log.hpp"
#include "runtime/vm/client.hpp"
#include "runtime/vm/command_helpers.hpp"
#include "runtime/vm/launch_spec.hpp"
#ifdef AIRLOCK_HAVE_IMAGES
#include "images/image_store.hpp"
#endif

namespace airlock::runtime {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(ErrorKind kind, const std::string& message) { throw SandboxError(kind, message); }

struct ImagePaths {
  std::string name;
  fs::path kernel, initramfs, rootfs;
};

// build: make the image when it is missing or out of date (create); a start never
// rebuilds, since its disk is a layer over the image it was made with.
ImagePaths resolve_image(const fs::path& home, const std::string& name, bool build,
                         const std::function<void(std::string_view)>& progress) {
#ifdef AIRLOCK_HAVE_IMAGES
  images::ImageStore store(home);
  Result<images::ImageInfo> info = Error{""};
  if (build) {
    images::BuildOptions options;
    options.progress = progress ? progress : [](std::string_view line) { std::cerr << "image: " << line << "\n"; };
    info = store.ensure(name, options);
  } else {
    info = store.load(name);
  }
  if (!info) fail(ErrorKind::invalid_config, "image '" + name + "': " + info.error());
  // The uncompressed kernel boots through its PVH entry, skipping decompression.
  std::error_code ec;
  const bool pvh = !info->vmlinux.empty() && fs::exists(info->vmlinux, ec);
  return {info->name, pvh ? info->vmlinux : info->kernel, info->initramfs, info->rootfs};
#else
  (void)build;
  (void)progress;
  const fs::path dir = home / "images" / name;
  ImagePaths p{name, fs::exists(dir / "vmlinux") ? dir / "vmlinux" : dir / "vmlinuz", dir / "initramfs.cpio.gz",
               dir / "rootfs.img"};
  for (const auto& f : {p.kernel, p.initramfs, p.rootfs}) {
    if (!fs::exists(f)) {
      fail(ErrorKind::invalid_config,
           "image '" + name + "' is missing " + f.string() + " (build it with: airlock image build " + name + ")");
    }
  }
  return p;
#endif
}

std::chrono::milliseconds boot_timeout(Accel accel) {
  if (const char* t = std::getenv("AIRLOCK_BOOT_TIMEOUT"); t != nullptr && *t != '\0') {
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::atof(t) * 1000));
  }
  return accel == Accel::kvm ? std::chrono::seconds(30) : std::chrono::seconds(60);
}

// Fills the machine-dependent fields: image files, accelerator, QEMU binary, timeouts.
void choose_machine(SupervisorConfig& config, const fs::path& home, const ImagePaths& image) {
  config.home = home;
  config.image = image.name;
  config.kernel = image.kernel;
  config.initramfs = image.initramfs;
  config.rootfs = image.rootfs;
  AccelProbeInputs probe;
  probe.kernel = image.kernel;
  probe.initramfs = image.initramfs;
  probe.cache_file = home / "accel.json";
  if (const char* a = std::getenv("AIRLOCK_ACCEL")) probe.request = a;
  if (const char* q = std::getenv("AIRLOCK_QEMU"); q != nullptr && *q != '\0') probe.qemu_binary = q;
  Result<AccelChoice> accel = choose_accel(probe);
  if (!accel) fail(ErrorKind::internal, accel.error());
  config.accel = accel->accel;
  config.accel_reason = accel->reason;
  config.boot_timeout = boot_timeout(accel->accel);
  config.qemu_binary = probe.qemu_binary;
}

}  // namespace

std::string file_identity(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return "";
  return std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ino);
}

std::string resolve_sandbox_id(const fs::path& home, std::string_view wanted) {
  Result<std::string> id = resolve_vm_id(wanted, list_vm_ids(home));
  if (!id) fail(ErrorKind::vm_not_found, id.error());
  return *id;
}

std::string check_hostname(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63;
  std::size_t start = 0;
  while (ok && start <= name.size()) {
    std::size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view label = name.substr(start, end - start);
    ok = !label.empty() && label.front() != '-' && label.back() != '-' &&
         label.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") ==
             std::string_view::npos;
    start = end + 1;
  }
  if (!ok) {
    fail(ErrorKind::invalid_config, "hostname '" + std::string(name) +
                                        "': letters, digits and '-' in dot-separated labels, at most 63 characters");
  }
  return std::string(name);
}

HostAlias parse_add_host(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    fail(ErrorKind::invalid_config, "add_hosts entry '" + std::string(text) + "' must be NAME:IP");
  }
  const std::string name(text.substr(0, colon));
  const std::string address(text.substr(colon + 1));
  bool name_ok = !name.empty() && name.size() <= 253;
  std::size_t start = 0;
  while (name_ok && start <= name.size()) {
    std::size_t end = name.find('.', start);
    if (end == std::string::npos) end = name.size();
    const std::string label = name.substr(start, end - start);
    name_ok = !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
              label.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") ==
                  std::string::npos;
    start = end + 1;
  }
  if (!name_ok) fail(ErrorKind::invalid_config, "add_hosts entry '" + std::string(text) + "': '" + name + "' is not a host name");
  auto ip = policy::IpAddress::parse(address);
  if (!ip) fail(ErrorKind::invalid_config, "add_hosts entry '" + std::string(text) + "': '" + address + "' is not an IP address");
  return HostAlias{name, ip->to_string()};
}

LaunchResult create_sandbox(const fs::path& home, const policy::Policy& policy, const CreateOptions& options) {
  if (!options.hostname.empty()) check_hostname(options.hostname);
  const ImagePaths image = resolve_image(home, policy.image, true, options.progress);
  SupervisorConfig config;
  config.policy = policy;
  config.network = options.network;
  config.hostname = options.hostname;
  config.add_hosts = options.add_hosts;
  choose_machine(config, home, image);
  config.rootfs_identity = file_identity(image.rootfs);
  // Benchmarks only (bench/net): the same VM on QEMU's unpoliced user-mode network.
  if (const char* n = std::getenv("AIRLOCK_BENCH_QEMU_USER_NET"); options.network && n && std::string(n) == "1") {
    config.network = false;
    config.qemu_user_network = true;
  }
  Result<LaunchResult> launched = launch_vm(config);
  if (!launched) fail(ErrorKind::internal, launched.error());
  return *launched;
}

std::optional<nlohmann::json> kept_config(const fs::path& home, const std::string& id) {
  std::ifstream in(vm_paths(home, id).dir / "launch.json", std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

SandboxInfo inspect_sandbox(const fs::path& home, const std::string& id) {
  SandboxInfo info;
  info.id = id;
  info.paths = vm_paths(home, id);
  Result<VmState> s = read_vm_state(info.paths.state);
  if (!s) {
    info.status = "unknown";
    info.error = s.error();
    return info;
  }
  info.alive = process_alive(s->pid);
  info.status = effective_status(*s, info.alive);
  info.error = s->error;
  info.state = std::move(*s);
  return info;
}

std::vector<SandboxInfo> list_sandboxes(const fs::path& home) {
  std::vector<SandboxInfo> out;
  for (const auto& id : list_vm_ids(home)) out.push_back(inspect_sandbox(home, id));
  return out;
}

LaunchResult start_sandbox(const fs::path& home, const std::string& id,
                           const std::map<std::string, std::string>& given, const policy::EnvLookup& env) {
  SandboxInfo info = inspect_sandbox(home, id);
  if (info.alive) fail(ErrorKind::invalid_config, "VM " + id + " is already " + info.status);
  std::optional<nlohmann::json> kept = kept_config(home, id);
  if (!kept) {
    fail(ErrorKind::invalid_config, "VM " + id + " has no launch.json (made by an older airlock): it can't be started again");
  }
  std::error_code ec;
  if (!fs::exists(info.paths.disk, ec)) fail(ErrorKind::invalid_config, "VM " + id + " has no disk left to boot");
  Result<nlohmann::json> restored = restore_secrets(*kept, given, env);
  if (!restored) fail(ErrorKind::invalid_config, "VM " + id + ": " + restored.error());
  Result<SupervisorConfig> config = parse_launch_json(*restored);
  if (!config) fail(ErrorKind::invalid_config, "VM " + id + ": " + config.error());
  const ImagePaths image = resolve_image(home, config->image, false, nullptr);
  if (file_identity(image.rootfs) != config->rootfs_identity) {
    fail(ErrorKind::invalid_config, "VM " + id + ": image '" + config->image +
                                        "' was rebuilt since the VM was made, and its disk is a layer over the old "
                                        "one; remove the VM and create a new one");
  }
  config->rootfs = image.rootfs;
  choose_machine(*config, home, image);
  config->id = id;
  config->restart = true;
  Result<LaunchResult> launched = launch_vm(*config);
  if (!launched) fail(ErrorKind::internal, launched.error());
  return *launched;
}

void stop_sandbox(const fs::path& home, const std::string& id) {
  SandboxInfo info = inspect_sandbox(home, id);
  if (!info.alive) return;  // already stopped
  Result<ApiClient> client = ApiClient::connect(info.paths.api_sock);
  if (!client) fail(ErrorKind::internal, "VM " + id + " is not reachable: " + client.error());
  Result<bool> stopped = client->stop(std::chrono::seconds(20));
  if (!stopped) fail(ErrorKind::internal, "stopping " + id + ": " + stopped.error());
  for (int i = 0; i < 100 && process_alive(info.state.pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void remove_sandbox(const fs::path& home, const std::string& id,
                    const std::function<void(const fs::path&)>& before_delete) {
  SandboxInfo info = inspect_sandbox(home, id);
  if (info.alive) {
    if (Result<ApiClient> client = ApiClient::connect(info.paths.api_sock)) {
      (void)client->stop(std::chrono::seconds(20));
    }
    for (int i = 0; i < 100 && process_alive(info.state.pid); ++i) {
      if (i == 50) ::kill(static_cast<pid_t>(info.state.pid), SIGKILL);  // QEMU dies with it
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  {
    AuditLog log;
    if (log.open(info.paths.events, id)) log.lifecycle("removed", nullptr, unix_millis());
  }
  if (before_delete) before_delete(info.paths.events);
  // A supervisor or QEMU that is still on its way out may delete its own files (sockets,
  // its temporary folder) while the walk runs: an entry that vanished under it is gone,
  // which is what we want, so the walk is taken again rather than failed.
  std::error_code ec;
  for (int attempt = 0; attempt < 5; ++attempt) {
    ec.clear();
    fs::remove_all(info.paths.dir, ec);
    if (!ec || ec != std::errc::no_such_file_or_directory) break;
    if (!fs::exists(fs::symlink_status(info.paths.dir))) {
      ec.clear();
      break;
    }
  }
  if (ec) fail(ErrorKind::internal, "can't remove " + info.paths.dir.string() + ": " + ec.message());
}

}  // namespace airlock::runtime
