// QEMU argv builder; see qemu_argv.hpp for what it refuses and why.
#include "runtime/vm/qemu_argv.hpp"

#include <cmath>
#include <stdexcept>

namespace airlock::runtime {

const char* accel_name(Accel accel) { return accel == Accel::kvm ? "kvm" : "tcg"; }

bool is_cmdline_safe(std::string_view value) {
  for (char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '/' || c == '.' || c == '_' || c == '-' || c == '+' || c == '@' ||
                    c == '=' || c == '%';
    if (!ok) return false;
  }
  return true;
}

namespace {

std::string mount_tag(const MountSpec& mount, std::size_t index) {
  return mount.tag.empty() ? "fs" + std::to_string(index) : mount.tag;
}

// checked = false only for values built from already validated parts (airlock.mounts,
// whose ':' and ',' are its own separators).
void add_key(std::string& cmdline, std::string_view key, std::string_view value,
             bool checked = true) {
  if (!is_cmdline_safe(key) || key.empty()) {
    throw std::invalid_argument("kernel argument key '" + std::string(key) +
                                "' has characters the guest can't parse");
  }
  if (checked && !is_cmdline_safe(value)) {
    throw std::invalid_argument("kernel argument airlock." + std::string(key) + "='" +
                                std::string(value) +
                                "' has characters the guest can't parse (spaces, quotes, "
                                "':' or ',')");
  }
  cmdline += " airlock.";
  cmdline += key;
  cmdline += '=';
  cmdline += value;
}

}  // namespace

Result<std::string> encode_mounts_cmdline(const std::vector<MountSpec>& mounts) {
  std::string out;
  for (std::size_t i = 0; i < mounts.size(); ++i) {
    const MountSpec& m = mounts[i];
    const std::string tag = mount_tag(m, i);
    if (tag.empty() || !is_cmdline_safe(tag) || tag.size() > 31) {
      return Error{"mount tag '" + tag + "' must be 1-31 plain characters"};
    }
    if (m.guest_path.empty() || m.guest_path.front() != '/') {
      return Error{"mount guest path '" + m.guest_path + "' must be absolute"};
    }
    if (!is_cmdline_safe(m.guest_path)) {
      return Error{"mount guest path '" + m.guest_path +
                   "' may only use letters, digits and / . _ - + @ = %"};
    }
    if (i > 0) out += ',';
    out += tag + ':' + m.guest_path + (m.readonly ? ":ro" : ":rw");
  }
  return out;
}

Result<std::string> encode_hosts_cmdline(const std::vector<std::pair<std::string, std::string>>& hosts) {
  std::string out;
  for (const auto& [name, address] : hosts) {
    const bool name_ok = !name.empty() && name.size() <= 253 &&
                         name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") ==
                             std::string::npos;
    const bool address_ok = !address.empty() && address.size() <= 45 &&
                            address.find_first_not_of("0123456789abcdefABCDEF.:") == std::string::npos;
    if (!name_ok) return Error{"host name '" + name + "' may only use letters, digits, '-' and '.'"};
    if (!address_ok) return Error{"'" + address + "' is not an IP address"};
    if (!out.empty()) out += ',';
    out += name + ':' + address;
  }
  return out;
}

std::string build_kernel_cmdline(const MachineConfig& config) {
  // panic=-1 + reboot=t + QEMU's -no-reboot: a guest panic ends QEMU instead of hanging.
  std::string cmdline = "console=ttyS0 quiet panic=-1 reboot=t";
  // Without it a TCG guest can't calibrate its TSC on a microvm and hangs (host_tsc.hpp).
  if (config.accel == Accel::tcg && config.tsc_khz) {
    cmdline += " tsc_early_khz=" + std::to_string(*config.tsc_khz);
  }
  add_key(cmdline, "hostname", config.hostname.empty() ? config.id : config.hostname);
  add_key(cmdline, "workspace", config.workspace);
  if (!config.mounts.empty()) {
    Result<std::string> mounts = encode_mounts_cmdline(config.mounts);
    if (!mounts) throw std::invalid_argument(mounts.error());
    add_key(cmdline, "mounts", *mounts, /*checked=*/false);
  }
  if (!config.extra_hosts.empty()) {
    Result<std::string> hosts = encode_hosts_cmdline(config.extra_hosts);
    if (!hosts) throw std::invalid_argument(hosts.error());
    add_key(cmdline, "hosts", *hosts, /*checked=*/false);
  }
  if (config.network) {
    const NetworkConfig& net = *config.network;
    if (!net.guest_ip.empty()) add_key(cmdline, "ip", net.guest_ip);
    if (!net.gateway_ip.empty()) add_key(cmdline, "gw", net.gateway_ip);
    if (!net.dns.empty()) add_key(cmdline, "dns", net.dns);
    add_key(cmdline, "mtu", std::to_string(net.mtu));
  }
  for (const auto& [key, value] : config.extra_cmdline) add_key(cmdline, key, value);
  return cmdline;
}

std::string qemu_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

std::vector<std::string> build_qemu_argv(const MachineConfig& config) {
  if (config.kernel.empty() || config.initramfs.empty()) {
    throw std::invalid_argument("machine config needs a kernel and an initramfs");
  }
  if (!(config.cpus > 0) || config.cpus > 64) {
    throw std::invalid_argument("cpus must be between 0 and 64");
  }
  if (config.memory_mb < 64) throw std::invalid_argument("memory must be at least 64 MB");
  const auto vcpus = static_cast<unsigned>(std::ceil(config.cpus));

  std::vector<std::string> argv = {
      config.qemu_binary,
      "-M", "microvm,x-option-roms=off,isa-serial=on,rtc=on",
      "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
  };
  if (config.accel == Accel::kvm) {
    argv.insert(argv.end(), {"-accel", "kvm", "-cpu", "host"});
  } else {
    argv.insert(argv.end(), {"-accel", "tcg,thread=multi", "-cpu", "max"});
  }
  argv.insert(argv.end(), {"-smp", std::to_string(vcpus), "-m", std::to_string(config.memory_mb)});
  argv.insert(argv.end(), {"-kernel", config.kernel.string(), "-initrd", config.initramfs.string(),
                           "-append", build_kernel_cmdline(config)});

  // Serial console to a file: the boot log users read with `airlock logs`.
  const std::string console =
      config.console_log.empty() ? std::string("null,id=con")
                                 : "file,id=con,path=" + qemu_escape(config.console_log.string());
  argv.insert(argv.end(), {"-chardev", console, "-serial", "chardev:con"});

  if (!config.disk.empty()) {
    argv.insert(argv.end(),
                {"-drive", "id=root,file=" + qemu_escape(config.disk.string()) +
                               ",format=qcow2,if=none,discard=unmap",
                 "-device", "virtio-blk-device,drive=root"});
  }

  // Control channel: QEMU listens, the supervisor connects once the socket appears.
  if (!config.ctl_socket.empty()) {
    argv.insert(argv.end(),
                {"-device", "virtio-serial-device",
                 "-chardev", "socket,id=ctl,path=" + qemu_escape(config.ctl_socket.string()) +
                                 ",server=on,wait=off",
                 "-device", "virtserialport,chardev=ctl,name=airlock.ctl"});
  }
  if (!config.qmp_socket.empty()) {
    argv.insert(argv.end(),
                {"-qmp", "unix:" + qemu_escape(config.qmp_socket.string()) + ",server=on,wait=off"});
  }

  for (std::size_t i = 0; i < config.mounts.size(); ++i) {
    const MountSpec& m = config.mounts[i];
    const std::string tag = m.tag.empty() ? "fs" + std::to_string(i) : m.tag;
    std::string fsdev = "local,id=" + tag + ",path=" + qemu_escape(m.host_path.string()) +
                        ",security_model=none";
    if (m.readonly) fsdev += ",readonly=on";
    argv.insert(argv.end(), {"-fsdev", fsdev, "-device",
                             "virtio-9p-device,fsdev=" + tag + ",mount_tag=" + tag});
  }

  if (config.network) {
    const NetworkConfig& net = *config.network;
    const std::string netdev =
        net.qemu_user_mode ? std::string("user,id=net0")
                           : "stream,id=net0,server=off,addr.type=unix,addr.path=" +
                                 qemu_escape(net.socket_path.string());
    argv.insert(argv.end(),
                {"-netdev", netdev,
                 "-device", "virtio-net-device,netdev=net0,mac=" + net.mac +
                                ",host_mtu=" + std::to_string(net.mtu)});
  }
  return argv;
}

}  // namespace airlock::runtime
