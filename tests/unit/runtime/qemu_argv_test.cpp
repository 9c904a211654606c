// QEMU argv and kernel command line: the machine shape, devices, and what is refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>

#include "runtime/vm/qemu_argv.hpp"

using namespace airlock::runtime;

namespace {

MachineConfig base() {
  MachineConfig c;
  c.id = "vm-0123abcd";
  c.kernel = "/img/vmlinuz";
  c.initramfs = "/img/initramfs.cpio.gz";
  c.disk = "disk.qcow2";
  c.console_log = "console.log";
  c.ctl_socket = "ctl.sock";
  c.qmp_socket = "qmp.sock";
  return c;
}

bool has(const std::vector<std::string>& argv, const std::string& value) {
  return std::find(argv.begin(), argv.end(), value) != argv.end();
}

// The value following option `opt` (first occurrence), or "".
std::string after(const std::vector<std::string>& argv, const std::string& opt, std::size_t nth = 0) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == opt && nth-- == 0) return argv[i + 1];
  }
  return "";
}

std::size_t count(const std::vector<std::string>& argv, const std::string& value) {
  return static_cast<std::size_t>(std::count(argv.begin(), argv.end(), value));
}

}  // namespace

TEST_CASE("argv: microvm with no default devices") {
  const auto argv = build_qemu_argv(base());
  CHECK(argv.front() == "qemu-system-x86_64");
  CHECK(after(argv, "-M") == "microvm,x-option-roms=off,isa-serial=on,rtc=on");
  CHECK(has(argv, "-nodefaults"));
  CHECK(has(argv, "-no-user-config"));
  CHECK(has(argv, "-nographic"));
  CHECK(has(argv, "-no-reboot"));
  CHECK(after(argv, "-kernel") == "/img/vmlinuz");
  CHECK(after(argv, "-initrd") == "/img/initramfs.cpio.gz");
  CHECK(after(argv, "-smp") == "1");
  CHECK(after(argv, "-m") == "512");
}

TEST_CASE("argv: accelerator and cpu model") {
  MachineConfig c = base();
  c.accel = Accel::tcg;
  auto argv = build_qemu_argv(c);
  CHECK(after(argv, "-accel") == "tcg,thread=multi");
  CHECK(after(argv, "-cpu") == "max");
  c.accel = Accel::kvm;
  argv = build_qemu_argv(c);
  CHECK(after(argv, "-accel") == "kvm");
  CHECK(after(argv, "-cpu") == "host");
}

TEST_CASE("argv: virtio-mmio devices only, and no NIC without a network") {
  const auto argv = build_qemu_argv(base());
  CHECK(after(argv, "-drive") == "id=root,file=disk.qcow2,format=qcow2,if=none,discard=unmap");
  CHECK(has(argv, "virtio-blk-device,drive=root"));
  CHECK(has(argv, "virtio-serial-device"));
  CHECK(has(argv, "virtserialport,chardev=ctl,name=airlock.ctl"));
  CHECK(has(argv, "socket,id=ctl,path=ctl.sock,server=on,wait=off"));
  CHECK(after(argv, "-qmp") == "unix:qmp.sock,server=on,wait=off");
  CHECK(after(argv, "-chardev") == "file,id=con,path=console.log");
  CHECK(after(argv, "-serial") == "chardev:con");
  for (const auto& a : argv) {
    CHECK(a.find("-pci") == std::string::npos);  // no PCI variants of virtio devices
    CHECK(a.find("virtio-net") == std::string::npos);
  }
  CHECK_FALSE(has(argv, "-netdev"));
  CHECK_FALSE(has(argv, "-nic"));
}

TEST_CASE("argv: network seam adds a stream netdev and virtio-net-device") {
  MachineConfig c = base();
  c.network = NetworkConfig{};
  c.network->socket_path = "net.sock";
  c.network->mtu = 65520;
  c.network->guest_ip = "10.0.2.15/24";
  c.network->gateway_ip = "10.0.2.2";
  const auto argv = build_qemu_argv(c);
  CHECK(after(argv, "-netdev") == "stream,id=net0,server=off,addr.type=unix,addr.path=net.sock");
  CHECK(has(argv, "virtio-net-device,netdev=net0,mac=52:54:00:12:34:56,host_mtu=65520"));
  const std::string cmdline = after(argv, "-append");
  CHECK(cmdline.find("airlock.ip=10.0.2.15/24") != std::string::npos);
  CHECK(cmdline.find("airlock.gw=10.0.2.2") != std::string::npos);
  CHECK(cmdline.find("airlock.mtu=65520") != std::string::npos);
}

TEST_CASE("argv: 9p mounts, readonly=on only for read-only ones") {
  MachineConfig c = base();
  c.mounts = {{"", "/home/u/src", "/workspace/src", true}, {"", "/home/u/out", "/workspace/out", false}};
  const auto argv = build_qemu_argv(c);
  CHECK(after(argv, "-fsdev", 0) == "local,id=fs0,path=/home/u/src,security_model=none,readonly=on");
  CHECK(after(argv, "-fsdev", 1) == "local,id=fs1,path=/home/u/out,security_model=none");
  CHECK(has(argv, "virtio-9p-device,fsdev=fs0,mount_tag=fs0"));
  CHECK(has(argv, "virtio-9p-device,fsdev=fs1,mount_tag=fs1"));
  CHECK(after(argv, "-append").find("airlock.mounts=fs0:/workspace/src:ro,fs1:/workspace/out:rw") !=
        std::string::npos);
}

TEST_CASE("argv: commas in host paths are doubled for QEMU's option parser") {
  MachineConfig c = base();
  c.mounts = {{"", "/data/a,b", "/workspace/ab", false}};
  c.disk = "/vms/x,y/disk.qcow2";
  const auto argv = build_qemu_argv(c);
  CHECK(after(argv, "-fsdev") == "local,id=fs0,path=/data/a,,b,security_model=none");
  CHECK(after(argv, "-drive").find("file=/vms/x,,y/disk.qcow2,") != std::string::npos);
  CHECK(qemu_escape("a,,b") == "a,,,,b");
}

TEST_CASE("cmdline: console, panic behaviour and airlock keys") {
  MachineConfig c = base();
  c.extra_cmdline = {{"probe", "1"}, {"uid", "1000"}};
  const std::string cmdline = build_kernel_cmdline(c);
  CHECK(cmdline.rfind("console=ttyS0 quiet panic=-1 reboot=t", 0) == 0);
  CHECK(cmdline.find("airlock.hostname=vm-0123abcd") != std::string::npos);
  CHECK(cmdline.find("airlock.workspace=/workspace") != std::string::npos);
  CHECK(cmdline.find("airlock.probe=1") != std::string::npos);
  CHECK(cmdline.find("airlock.uid=1000") != std::string::npos);
  CHECK(cmdline.find("airlock.mounts") == std::string::npos);  // no mounts, no key
  c.hostname = "box";
  CHECK(build_kernel_cmdline(c).find("airlock.hostname=box") != std::string::npos);
}

TEST_CASE("cmdline: values needing quotes are refused, not escaped") {
  MachineConfig c = base();
  c.workspace = "/work space";
  CHECK_THROWS_AS(build_kernel_cmdline(c), std::invalid_argument);
  c = base();
  c.extra_cmdline = {{"x", "a\"b"}};
  CHECK_THROWS_AS(build_qemu_argv(c), std::invalid_argument);
  c = base();
  c.extra_cmdline = {{"bad key", "1"}};
  CHECK_THROWS_AS(build_qemu_argv(c), std::invalid_argument);
}

TEST_CASE("mounts encoding") {
  CHECK(*encode_mounts_cmdline({}) == "");
  CHECK(*encode_mounts_cmdline({{"data", "/h", "/data", true}}) == "data:/data:ro");
  auto r = encode_mounts_cmdline({{"", "/h", "/a:b", false}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().find("/a:b") != std::string::npos);
  CHECK_FALSE(encode_mounts_cmdline({{"", "/h", "/a,b", false}}).ok());
  CHECK_FALSE(encode_mounts_cmdline({{"", "/h", "relative", false}}).ok());
  CHECK_FALSE(encode_mounts_cmdline({{"", "/h", "", false}}).ok());
  CHECK_FALSE(encode_mounts_cmdline({{"t:x", "/h", "/a", false}}).ok());
  CHECK_FALSE(encode_mounts_cmdline({{std::string(40, 'a'), "/h", "/a", false}}).ok());
}

TEST_CASE("argv: resources and refusals") {
  MachineConfig c = base();
  c.cpus = 1.5;
  c.memory_mb = 2048;
  auto argv = build_qemu_argv(c);
  CHECK(after(argv, "-smp") == "2");
  CHECK(after(argv, "-m") == "2048");
  c.cpus = 0;
  CHECK_THROWS_AS(build_qemu_argv(c), std::invalid_argument);
  c = base();
  c.memory_mb = 16;
  CHECK_THROWS_AS(build_qemu_argv(c), std::invalid_argument);
  c = base();
  c.kernel.clear();
  CHECK_THROWS_AS(build_qemu_argv(c), std::invalid_argument);
}

TEST_CASE("argv: probe boots need neither disk nor control channel") {
  MachineConfig c = base();
  c.disk.clear();
  c.ctl_socket.clear();
  c.qmp_socket.clear();
  c.console_log.clear();
  const auto argv = build_qemu_argv(c);
  CHECK_FALSE(has(argv, "-drive"));
  CHECK_FALSE(has(argv, "-qmp"));
  CHECK(count(argv, "-device") == 0);
  CHECK(after(argv, "-chardev") == "null,id=con");
}

TEST_CASE("cmdline: TCG guests get the host TSC frequency, KVM guests don't need it") {
  MachineConfig c = base();
  c.tsc_khz = 2445406;
  c.accel = Accel::tcg;
  CHECK(build_kernel_cmdline(c).find(" tsc_early_khz=2445406") != std::string::npos);
  c.accel = Accel::kvm;
  CHECK(build_kernel_cmdline(c).find("tsc_early_khz") == std::string::npos);
  c.accel = Accel::tcg;
  c.tsc_khz.reset();
  CHECK(build_kernel_cmdline(c).find("tsc_early_khz") == std::string::npos);
}

TEST_CASE("cmdline: extra /etc/hosts entries, checked before they reach the guest") {
  MachineConfig c = base();
  CHECK(build_kernel_cmdline(c).find("airlock.hosts") == std::string::npos);
  c.extra_hosts = {{"db.internal", "10.1.2.3"}, {"v6", "2001:db8::1"}};
  CHECK(build_kernel_cmdline(c).find("airlock.hosts=db.internal:10.1.2.3,v6:2001:db8::1") != std::string::npos);
  c.extra_hosts = {{"two words", "10.1.2.3"}};
  CHECK_THROWS_AS(build_kernel_cmdline(c), std::invalid_argument);
  c.extra_hosts = {{"x", "10.1.2.3,evil"}};
  CHECK_THROWS_AS(build_kernel_cmdline(c), std::invalid_argument);
}
