// airlock-init: PID 1 of an airlock guest.
//
// Runs as /init from the initramfs: mounts the basics, loads the modules the image
// lists, switches to the VM's disk (grown to the disk's size in the background,
// root_grow.hpp), prepares hostname, network (network.hpp), workspace and shares, opens
// the control port, says hello and serves the host's requests until told to shut down
// (boot.hpp, control_loop.hpp). With airlock.probe=1 it powers off as soon as the kernel
// has started it, which is all a probe of the accelerator needs. Any failure that
// leaves the guest unusable powers the VM off with a line on the console: a guest that
// cannot serve must not sit there looking booted. PID 1 never returns.
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <csignal>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>

#include "guest-init/boot.hpp"
#include "guest-init/cmdline.hpp"
#include "guest-init/control_loop.hpp"
#include "guest-init/control_port.hpp"
#include "guest-init/file_watch.hpp"
#include "guest-init/log.hpp"
#include "guest-init/network.hpp"
#include "guest-init/root_grow.hpp"
#include "guest-init/shutdown.hpp"
#include "protocol/messages.hpp"

namespace {

using namespace airlock::guest;

std::string read_cmdline() {
  std::ifstream in("/proc/cmdline");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string hello_message() {
  utsname uts{};
  ::uname(&uts);
  return airlock::protocol::dump(airlock::protocol::Json{{"op", "hello"},
                                                         {"version", airlock::protocol::kProtocolVersion},
                                                         {"boot_ms", uptime_ms()},
                                                         {"kernel", uts.release}});
}

[[noreturn]] void run() {
  block_init_signals();
  ::signal(SIGPIPE, SIG_IGN);  // a closed stdin pipe is an EPIPE, not a dead init
  // Not dumpable: a sandboxed root without CAP_SYS_PTRACE cannot read our memory.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::umask(022);
  // Ctrl-Alt-Del then arrives as SIGINT (an orderly shutdown) instead of an instant reboot.
  ::reboot(RB_DISABLE_CAD);

  if (!early_mounts()) log_line("early mounts incomplete");
  BootConfig config = parse_cmdline(read_cmdline());
  if (config.probe) {
    log_line("probe boot: powering off");
    power_off_now();
  }
  for (const auto& warning : config.warnings) log_line(warning);

  load_modules("/etc/airlock-modules");
  if (!switch_root("/dev/vda", "ext4")) {
    log_line("cannot mount the root disk; powering off");
    power_off_now();
  }
  late_mounts();
  start_root_grow("/dev/vda");  // in the background; still single-threaded here
  configure_host(config);
  configure_network(config);
  prepare_workspace(config);

  const int port = open_control_port(std::chrono::seconds(10));
  if (port < 0) {
    log_line("no control port; powering off");
    shutdown_and_power_off();
  }
  FileWatch watch;
  watch.start(config.workspace);
  {
    ControlServer server(config, port, watch, hello_message());
    server.run();
    server.abort_sessions();
  }
  shutdown_and_power_off();
}

}  // namespace

int main() {
  if (::getpid() != 1) {
    log_line("must run as PID 1 (the guest's init)");
    return 1;
  }
  try {
    run();
  } catch (const std::exception& e) {
    log_line(std::string("fatal: ") + e.what());
  } catch (...) {
    log_line("fatal: unknown exception");
  }
  shutdown_and_power_off();
}
