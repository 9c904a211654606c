// launch_vm(): reserve a VM directory, start its supervisor as a detached process and
// wait for its boot report. See supervisor.hpp.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "runtime/vm/supervisor.hpp"
#include "runtime/vm/vm_store.hpp"

namespace airlock::runtime {

namespace fs = std::filesystem;

namespace {

// mkdir is the lock: two concurrent creates can't pick the same id.
Result<std::string> reserve_vm_dir(const fs::path& home, const std::string& wanted) {
  std::error_code ec;
  fs::create_directories(home / "vms", ec);
  if (ec) return Error{"can't create " + (home / "vms").string() + ": " + ec.message()};
  for (int attempt = 0; attempt < 16; ++attempt) {
    const std::string id = wanted.empty() ? generate_vm_id() : wanted;
    const fs::path dir = vm_paths(home, id).dir;
    if (::mkdir(dir.c_str(), 0700) == 0) return id;
    if (errno != EEXIST || !wanted.empty()) {
      return Error{"can't create " + dir.string() + ": " + std::strerror(errno)};
    }
  }
  return Error{"can't find a free VM id"};
}

// Closes every descriptor from 3 up except keep. The supervisor is forked, not exec'd,
// so without this it would hold whatever the CLI (or the CLI's caller) had open (a run's
// --events file, a pipe someone waits to see closed) for the VM's whole life, and pass
// what isn't close-on-exec on to QEMU.
void close_inherited_fds_except(int keep) {
  const auto fd = static_cast<unsigned int>(keep);
  if (keep > 3) ::close_range(3, fd - 1, 0);
  ::close_range(keep >= 3 ? fd + 1 : 3, ~0U, 0);
}

[[noreturn]] void become_supervisor(const SupervisorConfig& config, int ready_fd) {
  const VmPaths paths = vm_paths(config.home, config.id);
  const int log = ::open(paths.supervisor_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  dup2(devnull, 0);
  dup2(log >= 0 ? log : devnull, 1);
  dup2(log >= 0 ? log : devnull, 2);
  close_inherited_fds_except(ready_fd);  // log and devnull live on as 0-2
  if (::chdir(paths.dir.c_str()) != 0) _exit(1);
  ::umask(077);
  const int code = run_supervisor(config, ready_fd);
  std::fflush(nullptr);
  _exit(code);
}

}  // namespace

Result<LaunchResult> launch_vm(SupervisorConfig config) {
  Result<std::string> id = reserve_vm_dir(config.home, config.id);
  if (!id) return Error{id.error()};
  config.id = *id;

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno)};
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child < 0) return Error{std::string("fork: ") + std::strerror(errno)};
  if (child == 0) {
    // Double fork: the supervisor is re-parented away from the CLI and leads its own
    // session, so the terminal's signals and the CLI's exit don't reach it.
    ::close(pipe_fds[0]);
    setsid();
    const pid_t grandchild = fork();
    if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
    become_supervisor(config, pipe_fds[1]);
  }
  ::close(pipe_fds[1]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }

  // The supervisor's deadline is the boot watchdog; allow it time for qemu-img first.
  const auto deadline = std::chrono::steady_clock::now() + config.boot_timeout + std::chrono::seconds(60);
  std::string report;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{pipe_fds[0], POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char buf[1024];
    const ssize_t r = read(pipe_fds[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    report.append(buf, static_cast<std::size_t>(r));
    if (report.find('\n') != std::string::npos) break;
  }
  ::close(pipe_fds[0]);
  const VmPaths paths = vm_paths(config.home, config.id);
  const auto j = nlohmann::json::parse(report, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Error{"VM " + config.id + ": the supervisor ended without reporting; see " +
                 paths.supervisor_log.string()};
  }
  if (!j.value("ok", false)) {
    return Error{"VM " + config.id + ": " + j.value("error", std::string("boot failed"))};
  }
  return LaunchResult{config.id, j.value("boot_ms", std::int64_t{0})};
}

}  // namespace airlock::runtime
