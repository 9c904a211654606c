// fork/exec helpers; see process.hpp.
#include "runtime/vm/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace airlock::runtime {

namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

[[noreturn]] void exec_child(const std::vector<std::string>& argv, const SpawnOptions& o,
                             pid_t parent) {
  if (o.die_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);  // the parent died before prctl took effect
  }
  // Signals blocked or ignored by the parent (Asio's signal handling) must not leak in.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  const int devnull = open("/dev/null", O_RDWR);
  const int fds[3] = {o.stdin_fd, o.stdout_fd, o.stderr_fd};
  for (int i = 0; i < 3; ++i) dup2(fds[i] >= 0 ? fds[i] : devnull, i);
  // Close every other descriptor: QEMU must not hold the supervisor's sockets.
  const long max_fd = sysconf(_SC_OPEN_MAX);
  for (int fd = 3; fd < (max_fd > 0 ? max_fd : 1024) && fd < 65536; ++fd) close(fd);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  const std::string msg = "exec " + argv[0] + ": " + std::strerror(errno) + "\n";
  (void)!write(2, msg.data(), msg.size());
  _exit(127);
}

}  // namespace

Result<pid_t> spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty()) return Error{"spawn: empty argv"};
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Error{std::string("fork: ") + std::strerror(errno)};
  if (pid == 0) exec_child(argv, options, parent);
  return pid;
}

Result<CommandResult> run_command(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds deadline) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno)};
  SpawnOptions options;
  options.stdout_fd = pipe_fds[1];
  options.stderr_fd = pipe_fds[1];
  options.die_with_parent = true;
  const auto start = std::chrono::steady_clock::now();
  Result<pid_t> pid = spawn(argv, options);
  close(pipe_fds[1]);
  if (!pid) {
    close(pipe_fds[0]);
    return Error{pid.error()};
  }
  CommandResult result;
  bool open_pipe = true;
  int status = 0;
  bool reaped = false;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(start + deadline - now);
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(*pid, SIGKILL);
      break;
    }
    if (open_pipe) {
      pollfd p{pipe_fds[0], POLLIN, 0};
      const int n = poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 50)));
      if (n > 0) {
        char buf[4096];
        const ssize_t r = read(pipe_fds[0], buf, sizeof buf);
        if (r > 0) {
          if (result.output.size() < 65536) result.output.append(buf, static_cast<std::size_t>(r));
        } else if (r == 0 || errno != EINTR) {
          open_pipe = false;
        }
      }
    } else {
      usleep(10000);
    }
    const pid_t w = waitpid(*pid, &status, WNOHANG);
    if (w == *pid) {
      reaped = true;
      // Drain what is left without blocking (a grandchild could hold the pipe open).
      for (;;) {
        pollfd p{pipe_fds[0], POLLIN, 0};
        if (!open_pipe || poll(&p, 1, 0) <= 0) break;
        char buf[4096];
        const ssize_t r = read(pipe_fds[0], buf, sizeof buf);
        if (r <= 0) break;
        if (result.output.size() < 65536) result.output.append(buf, static_cast<std::size_t>(r));
      }
      break;
    }
  }
  close(pipe_fds[0]);
  if (!reaped) {
    while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  result.exit_code = result.timed_out ? -1 : decode_status(status);
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return result;
}

std::string find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return name;
}

}  // namespace airlock::runtime
