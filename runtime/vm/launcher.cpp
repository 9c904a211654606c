// launch_vm(): reserve (or find) a VM directory, write launch.json, start its supervisor
// as a detached process running `airlock supervise`, hand it its config through a pipe
// and wait for its boot report. See supervisor.hpp.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/vm/launch_spec.hpp"
#include "runtime/vm/supervisor.hpp"
#include "runtime/vm/vm_store.hpp"

namespace airlock::runtime {

namespace fs = std::filesystem;

namespace {

// Where the supervisor's ends of the two pipes sit when it starts.
constexpr int kReadyFd = 3;
constexpr int kConfigFd = 4;

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

bool write_private_file(const fs::path& file, const std::string& text) {
  const fs::path tmp = file.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return ::close(fd) == 0 && std::rename(tmp.c_str(), file.c_str()) == 0;
}

// Runs in the grandchild, between fork and exec: system calls only. Puts the pipes at
// kReadyFd/kConfigFd, stdio on /dev/null and supervisor.log, and closes everything else,
// so the supervisor holds nothing the caller had open (a run's --events file, a pipe
// someone waits to see closed) and passes nothing on to QEMU.
[[noreturn]] void exec_supervisor(const char* exe, const char* dir, const char* log_path, int ready_fd,
                                  int config_fd) {
  const int log = ::open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  // Move the pipes above the targets first, so the dup2s below can't clobber them.
  const int ready = ::fcntl(ready_fd, F_DUPFD, 10);
  const int config = ::fcntl(config_fd, F_DUPFD, 10);
  ::dup2(devnull, 0);
  ::dup2(log >= 0 ? log : devnull, 1);
  ::dup2(log >= 0 ? log : devnull, 2);
  ::dup2(ready, kReadyFd);
  ::dup2(config, kConfigFd);
  ::close_range(kConfigFd + 1, ~0U, 0);
  if (::chdir(dir) != 0) _exit(1);
  ::umask(077);
  // Dispositions and the mask survive exec: a caller ignoring SIGCHLD would make QEMU
  // unreapable, one blocking signals would make the supervisor deaf to stop requests.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s : {SIGCHLD, SIGPIPE, SIGINT, SIGTERM, SIGHUP}) ::signal(s, SIG_DFL);
  char* const argv[] = {const_cast<char*>("airlock"), const_cast<char*>("supervise"), nullptr};
  ::execv(exe, argv);
  _exit(127);
}

std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

Result<LaunchResult> launch_vm(SupervisorConfig config) {
  if (config.restart) {
    if (!is_valid_vm_id(config.id)) return Error{"restart needs a VM id"};
  } else {
    Result<std::string> id = reserve_vm_dir(config.home, config.id);
    if (!id) return Error{id.error()};
    config.id = *id;
  }
  const VmPaths paths = vm_paths(config.home, config.id);
  if (!write_private_file(paths.dir / "launch.json", launch_json(config, false).dump(2) + "\n")) {
    return Error{"can't write " + (paths.dir / "launch.json").string() + ": " + std::strerror(errno)};
  }
  const std::string secret_config = launch_json(config, true).dump();

  // Everything the grandchild needs is prepared here: after fork it may only make
  // system calls (the caller can have threads).
  char exe[4096];
  const ssize_t exe_len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (exe_len <= 0) return Error{std::string("can't find the airlock binary: ") + std::strerror(errno)};
  exe[exe_len] = '\0';
  const std::string dir = paths.dir.string();
  const std::string log = paths.supervisor_log.string();

  int ready[2], pipe_config[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno)};
  if (pipe2(pipe_config, O_CLOEXEC) != 0) {
    ::close(ready[0]);
    ::close(ready[1]);
    return Error{std::string("pipe: ") + std::strerror(errno)};
  }
  const pid_t child = fork();
  if (child < 0) return Error{std::string("fork: ") + std::strerror(errno)};
  if (child == 0) {
    // Double fork: the supervisor is re-parented away from the caller and leads its own
    // session, so the terminal's signals and the caller's exit don't reach it.
    setsid();
    const pid_t grandchild = fork();
    if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
    exec_supervisor(exe, dir.c_str(), log.c_str(), ready[1], pipe_config[0]);
  }
  ::close(ready[1]);
  ::close(pipe_config[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  // The supervisor reads its config before anything else, so this can't block for long
  // (and can't deadlock: it never writes to us before it has read everything).
  std::size_t sent = 0;
  while (sent < secret_config.size()) {
    const ssize_t n = ::write(pipe_config[1], secret_config.data() + sent, secret_config.size() - sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  ::close(pipe_config[1]);

  // The supervisor's deadline is the boot watchdog; allow it time for qemu-img first.
  const auto deadline = std::chrono::steady_clock::now() + config.boot_timeout + std::chrono::seconds(60);
  std::string report;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{ready[0], POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char buf[1024];
    const ssize_t r = read(ready[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    report.append(buf, static_cast<std::size_t>(r));
    if (report.find('\n') != std::string::npos) break;
  }
  ::close(ready[0]);
  const auto j = nlohmann::json::parse(report, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Error{"VM " + config.id + ": the supervisor ended without reporting; see " +
                 paths.supervisor_log.string()};
  }
  auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean() || !ok->get<bool>()) {
    auto error = j.find("error");
    return Error{"VM " + config.id + ": " +
                 (error != j.end() && error->is_string() ? error->get<std::string>() : std::string("boot failed"))};
  }
  auto boot = j.find("boot_ms");
  return LaunchResult{config.id, boot != j.end() && boot->is_number_integer() ? boot->get<std::int64_t>() : 0};
}

int supervisor_main(int config_fd, int ready_fd) {
  const std::string text = read_all(config_fd);
  ::close(config_fd);
  auto report_failure = [&](const std::string& why) {
    const std::string line = nlohmann::json{{"ok", false}, {"error", why}}.dump() + "\n";
    (void)!::write(ready_fd, line.data(), line.size());
    ::close(ready_fd);
    std::fprintf(stderr, "supervisor: %s\n", why.c_str());
    return 1;
  };
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return report_failure("the launcher sent no config");
  Result<SupervisorConfig> config = parse_launch_json(j);
  if (!config) return report_failure(config.error());
  const int code = run_supervisor(*config, ready_fd);
  std::fflush(nullptr);
  return code;
}

}  // namespace airlock::runtime
