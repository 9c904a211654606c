// QEMU's lifecycle; see lifecycle_service.hpp.
// GCC 12 reports a "potential null dereference" inside Asio's scheduler once it is
// inlined; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "runtime/vm/lifecycle_service.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>

#include "runtime/vm/launch_spec.hpp"

namespace airlock::runtime {

namespace {
constexpr const char* kDisk = "disk.qcow2";
constexpr const char* kQmpSock = "qmp.sock";
constexpr const char* kState = "state.json";
constexpr const char* kQemuLog = "qemu.log";
}  // namespace

LifecycleService::LifecycleService(boost::asio::io_context& io, const SupervisorConfig& config, Hooks hooks)
    : io_(io), config_(config), hooks_(std::move(hooks)), boot_timer_(io), stop_timer_(io),
      qmp_(std::make_unique<QmpWorker>(io, kQmpSock)) {
  if (config.restart) {
    // A restart keeps the VM's history: when it was created, and what it was made from.
    if (Result<VmState> old = read_vm_state(kState)) state_ = *old;
  }
  state_.id = config.id;
  state_.pid = getpid();
  state_.status = "creating";
  if (state_.created == 0) state_.created = unix_millis();
  state_.image = config.image;
  state_.config = state_config_json(config);
  state_.accel = accel_name(config.accel);
  state_.boot_ms.reset();
  state_.error.clear();
  save_state();
}

void LifecycleService::save_state() {
  if (!write_vm_state(kState, state_)) log("can't write state.json");
}

void LifecycleService::fail(const std::string& error) {
  log("failed: " + error);
  state_.status = "failed";
  state_.error = error;
  save_state();
}

Result<bool> LifecycleService::prepare_disk() {
  if (config_.restart && ::access(kDisk, F_OK) == 0) return true;
  const std::vector<std::string> img = {config_.qemu_img_binary, "create", "-q", "-f", "qcow2",
                                        "-F", "raw", "-b", config_.rootfs.string(), kDisk,
                                        std::to_string(config_.policy.resources.disk_size_mb) + "M"};
  Result<CommandResult> made = run_command(img, std::chrono::seconds(60));
  if (!made || made->exit_code != 0) return Error{"qemu-img create failed: " + (made ? made->output : made.error())};
  return true;
}

Result<bool> LifecycleService::start(const std::vector<std::string>& argv, std::optional<UserNamespace> user_namespace) {
  const int qemu_log = ::open(kQemuLog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  SpawnOptions options;
  options.stdout_fd = qemu_log;
  options.stderr_fd = qemu_log;
  options.die_with_parent = true;
  options.user_namespace = user_namespace;
  std::string line;
  for (const auto& a : argv) line += a + " ";
  log("starting " + line);
  Result<pid_t> pid = spawn(argv, options);
  if (qemu_log >= 0) ::close(qemu_log);
  if (!pid) return Error{"can't start QEMU: " + pid.error()};
  qemu_pid_ = *pid;
  qemu_started_ = std::chrono::steady_clock::now();
  boot_timer_.expires_after(config_.boot_timeout);
  boot_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || booted_ || qemu_pid_ < 0) return;
    if (hooks_.on_boot_timeout) hooks_.on_boot_timeout();
    ::kill(qemu_pid_, SIGKILL);
  });
  return true;
}

std::chrono::milliseconds LifecycleService::since_start() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - qemu_started_);
}

void LifecycleService::booted(std::int64_t boot_ms) {
  booted_ = true;
  boot_timer_.cancel();
  state_.status = stopping_ ? "stopping" : "running";
  state_.boot_ms = boot_ms;
  save_state();
}

void LifecycleService::on_child_exited() {
  int status = 0;
  if (qemu_pid_ <= 0 || waitpid(qemu_pid_, &status, WNOHANG) != qemu_pid_) return;
  qemu_pid_ = -1;
  boot_timer_.cancel();
  stop_timer_.cancel();
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  log("QEMU exited with " + std::to_string(code));
  if (hooks_.on_exit) hooks_.on_exit(code);
}

void LifecycleService::begin_stop() {
  if (stopping_ || qemu_pid_ < 0) return;
  stopping_ = true;
  state_.status = "stopping";
  save_state();
  stop_stage_ = 1;
  const bool asked = booted_ && hooks_.power_off_guest && hooks_.power_off_guest();
  stop_timer_.expires_after(asked ? config_.stop_grace : std::chrono::milliseconds(0));
  stop_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) escalate_stop();
  });
}

void LifecycleService::escalate_stop() {
  if (qemu_pid_ < 0) return;
  if (stop_stage_ == 1) {
    stop_stage_ = 2;
    log("guest did not power off in time: QMP quit");
    qmp_->execute("quit", std::chrono::seconds(1), [](Result<nlohmann::json>) {});
    stop_timer_.expires_after(std::chrono::seconds(3));
    stop_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) escalate_stop();
    });
    return;
  }
  log("QEMU still running: SIGKILL");
  ::kill(qemu_pid_, SIGKILL);
}

void LifecycleService::status(std::function<void(nlohmann::json)> reply) {
  nlohmann::json out = {{"op", "ok"}, {"id", config_.id}, {"status", state_.status},
                        {"accel", accel_name(config_.accel)}, {"image", config_.image}};
  if (state_.boot_ms) out["boot_ms"] = *state_.boot_ms;
  if (qemu_pid_ <= 0) {
    reply(std::move(out));
    return;
  }
  qmp_->execute("query-status", std::chrono::milliseconds(500),
                [out = std::move(out), reply = std::move(reply)](Result<nlohmann::json> s) mutable {
                  if (s && s->is_object()) {
                    auto status = s->find("status");
                    if (status != s->end() && status->is_string()) out["qemu_status"] = status->get<std::string>();
                  }
                  reply(std::move(out));
                });
}

void LifecycleService::shut_down() {
  boot_timer_.cancel();
  stop_timer_.cancel();
  if (qemu_pid_ > 0) {
    // Still running (the loop stopped by an error): don't leave it behind.
    ::kill(qemu_pid_, SIGKILL);
    waitpid(qemu_pid_, nullptr, 0);
    qemu_pid_ = -1;
  }
}

}  // namespace airlock::runtime
