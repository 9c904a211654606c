// QEMU's life as the supervisor sees it: the VM's disk, the QEMU process, the boot
// watchdog, an orderly stop, QEMU's status and state.json.
//
// Theory of operation: prepare_disk() makes disk.qcow2 over the image's read-only
// rootfs (a restart keeps the disk it has). start() spawns QEMU (in a user namespace
// when the VM mounts host folders: see supervisor.cpp) and arms the boot watchdog; booted() disarms it. begin_stop() asks the guest to power off, then after
// the grace period has QEMU quit over QMP, then SIGKILLs it; on_child_exited() reaps it
// and reports the exit. status() answers from memory at once and adds QEMU's own view
// from QMP, which runs on the QmpWorker's thread: nothing here blocks the loop.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "runtime/vm/process.hpp"
#include "runtime/vm/qmp_worker.hpp"
#include "runtime/vm/supervisor.hpp"
#include "runtime/vm/vm_store.hpp"

namespace airlock::runtime {

class LifecycleService {
 public:
  struct Hooks {
    std::function<bool()> power_off_guest;         // asks the guest; false if it can't be asked
    std::function<void(int exit_code)> on_exit;    // QEMU was reaped
    std::function<void()> on_boot_timeout;
    std::function<void(const std::string&)> log;
  };

  LifecycleService(boost::asio::io_context& io, const SupervisorConfig& config, Hooks hooks);

  // disk.qcow2 over the image's rootfs, unless restarting.
  Result<bool> prepare_disk();
  // Spawns QEMU and arms the boot watchdog.
  Result<bool> start(const std::vector<std::string>& argv, std::optional<UserNamespace> user_namespace);
  void booted(std::int64_t boot_ms);
  // Call on SIGCHLD: reaps QEMU if it exited.
  void on_child_exited();
  void begin_stop();
  // Calls reply (on the loop) with {"op":"ok",id,status,accel,image,boot_ms,qemu_status}.
  void status(std::function<void(nlohmann::json)> reply);

  // The failure is recorded in state.json; the caller reports it.
  void fail(const std::string& error);
  VmState& state() { return state_; }
  void save_state();
  bool running() const { return qemu_pid_ > 0; }
  bool stopping() const { return stopping_; }
  bool failed() const { return state_.status == "failed"; }
  std::chrono::milliseconds since_start() const;
  // Stops the timers (the supervisor is exiting); kills a QEMU still running.
  void shut_down();

 private:
  void escalate_stop();
  void log(const std::string& line) const {
    if (hooks_.log) hooks_.log(line);
  }

  boost::asio::io_context& io_;
  const SupervisorConfig& config_;
  Hooks hooks_;
  VmState state_;
  boost::asio::steady_timer boot_timer_, stop_timer_;
  std::unique_ptr<QmpWorker> qmp_;
  pid_t qemu_pid_ = -1;
  std::chrono::steady_clock::time_point qemu_started_;
  bool booted_ = false;
  bool stopping_ = false;
  int stop_stage_ = 0;
};

}  // namespace airlock::runtime
