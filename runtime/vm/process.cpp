// fork/exec helpers; see process.hpp.
#include "runtime/vm/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
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

// The id maps, formatted before fork (no allocation in the child).
struct IdMaps {
  std::string uid_map, gid_map;
};

IdMaps format_maps(const UserNamespace& ns) {
  return {std::to_string(ns.inside_uid) + " " + std::to_string(geteuid()) + " 1\n",
          std::to_string(ns.inside_gid) + " " + std::to_string(getegid()) + " 1\n"};
}

bool write_file(const char* path, const std::string& text) {
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// Enters a new user namespace in which the caller's ids are the given inside ids.
bool enter_user_namespace(const IdMaps& maps) {
  if (unshare(CLONE_NEWUSER) != 0) return false;
  // "deny" first: an unprivileged process may only write gid_map once setgroups is off.
  return write_file("/proc/self/setgroups", "deny") && write_file("/proc/self/uid_map", maps.uid_map) &&
         write_file("/proc/self/gid_map", maps.gid_map);
}

[[noreturn]] void exec_child(char* const* args, const SpawnOptions& o, pid_t parent,
                             const IdMaps* maps) {
  if (maps != nullptr && !enter_user_namespace(*maps)) {
    static const char msg[] = "airlock: can't enter a user namespace\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(126);
  }
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
  execvp(args[0], args);
  const char* why = std::strerror(errno);
  (void)!write(2, "exec ", 5);
  (void)!write(2, args[0], std::strlen(args[0]));
  (void)!write(2, ": ", 2);
  (void)!write(2, why, std::strlen(why));
  (void)!write(2, "\n", 1);
  _exit(127);
}

}  // namespace

Result<pid_t> spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty()) return Error{"spawn: empty argv"};
  const pid_t parent = getpid();
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::optional<IdMaps> maps;
  if (options.user_namespace) maps = format_maps(*options.user_namespace);
  const pid_t pid = fork();
  if (pid < 0) return Error{std::string("fork: ") + std::strerror(errno)};
  if (pid == 0) exec_child(args.data(), options, parent, maps ? &*maps : nullptr);
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

bool user_namespaces_work() {
  const IdMaps maps = format_maps(UserNamespace{});
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) _exit(enter_user_namespace(maps) ? 0 : 1);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
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
