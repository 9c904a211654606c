// Exec: fork, sandbox, stdio plumbing and exit reporting (see exec_session.hpp).
#include "guest-init/exec_session.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "guest-init/errors.hpp"
#include "guest-init/log.hpp"
#include "guest-init/sandbox.hpp"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

namespace airlock::guest {
namespace {

using protocol::FrameType;
using protocol::Json;

constexpr std::size_t kReadChunk = 64 * 1024;

// What the child writes to the report pipe when it cannot exec.
struct StartReport {
  int error;
  char stage[120];
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Child side, after fork: never returns. Only async-signal-safe calls plus the
// (single-threaded parent, so safe) libseccomp allocation in apply_sandbox.
[[noreturn]] void run_child(const ExecSpec& spec, int report_fd, int stdin_fd, int stdout_fd,
                            int stderr_fd, bool tty, const std::vector<std::string>& candidates,
                            char* const* argv, char* const* envp) {
  StartReport report{};
  auto fail = [&](const char* stage, int err) {
    report.error = err;
    std::strncpy(report.stage, stage, sizeof(report.stage) - 1);
    [[maybe_unused]] const ssize_t n = ::write(report_fd, &report, sizeof(report));
    ::_exit(127);
  };

  // guest-init blocks the signals it takes through signalfd and ignores SIGPIPE; both
  // are inherited across exec, so undo them.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }

  if (::setsid() < 0) fail("setsid", errno);
  if (tty && ::ioctl(stdout_fd, TIOCSCTTY, 0) != 0) fail("controlling terminal", errno);
  if (::dup2(stdin_fd, 0) < 0 || ::dup2(stdout_fd, 1) < 0 || ::dup2(stderr_fd, 2) < 0) fail("dup2", errno);
  // Everything else guest-init holds is close-on-exec already; make sure of it.
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);

  const char* stage = "sandbox";
  SandboxRequest sandbox{spec.privileged, spec.uid, spec.gid};
  if (const int err = apply_sandbox(sandbox, &stage); err != 0) fail(stage, err);
  if (::chdir(spec.cwd.c_str()) != 0) fail(("chdir " + spec.cwd).c_str(), errno);
  ::umask(022);

  int err = ENOENT;
  for (const auto& path : candidates) {
    ::execve(path.c_str(), argv, envp);
    // Like execvp: remember EACCES but keep looking; stop on anything but "not here".
    if (errno == EACCES) err = EACCES;
    else if (errno != ENOENT && errno != ENOTDIR) {
      err = errno;
      break;
    }
  }
  fail(("exec " + spec.argv[0]).c_str(), err);
  ::_exit(127);
}

}  // namespace

std::unique_ptr<ExecSession> ExecSession::start(std::uint32_t channel, const ExecSpec& spec, SessionContext ctx) {
  std::unique_ptr<ExecSession> session(new ExecSession(channel, ctx));
  ExecSession& s = *session;
  s.tty_ = spec.tty;

  // Child-side fds, closed in the parent after fork.
  int child_in = -1, child_out = -1, child_err = -1;
  auto cleanup_child_fds = [&] {
    if (child_in >= 0 && child_in != child_out) ::close(child_in);
    if (child_err >= 0 && child_err != child_out) ::close(child_err);
    if (child_out >= 0) ::close(child_out);
    child_in = child_out = child_err = -1;
  };
  auto fail = [&](int err, const std::string& what) {
    cleanup_child_fds();
    s.send_error(err, what);
    close_fd(s.stdout_fd_);
    close_fd(s.stderr_fd_);
    close_fd(s.stdin_fd_);
    close_fd(s.master_fd_);
    close_fd(s.report_fd_);
    s.state_ = State::done;
    return std::move(session);
  };

  if (spec.tty) {
    s.master_fd_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s.master_fd_ < 0 || ::unlockpt(s.master_fd_) != 0) return fail(errno, "open terminal");
    // TIOCGPTPEER opens the peer without a path lookup in /dev/pts.
    const int slave = ::ioctl(s.master_fd_, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) return fail(errno, "open terminal peer");
    // Owned by the user, as login would, so tty(1), ssh and friends accept it.
    [[maybe_unused]] const int chowned = ::fchown(slave, spec.uid, spec.gid);
    winsize ws{};
    ws.ws_row = spec.rows;
    ws.ws_col = spec.cols;
    ::ioctl(s.master_fd_, TIOCSWINSZ, &ws);
    child_in = child_out = child_err = slave;
    s.stdout_fd_ = s.master_fd_;
    if (spec.stdin_open) {
      s.stdin_fd_ = ::fcntl(s.master_fd_, F_DUPFD_CLOEXEC, 3);
      if (s.stdin_fd_ < 0) return fail(errno, "dup terminal");
    }
    set_nonblocking(s.master_fd_);
  } else {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return fail(errno, "pipe");
    s.stdout_fd_ = out[0];
    child_out = out[1];
    if (::pipe2(err, O_CLOEXEC) != 0) return fail(errno, "pipe");
    s.stderr_fd_ = err[0];
    child_err = err[1];
    if (spec.stdin_open) {
      int in[2];
      if (::pipe2(in, O_CLOEXEC) != 0) return fail(errno, "pipe");
      child_in = in[0];
      s.stdin_fd_ = in[1];
    } else {
      child_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (child_in < 0) return fail(errno, "open /dev/null");
    }
    set_nonblocking(s.stdout_fd_);
    set_nonblocking(s.stderr_fd_);
  }
  if (s.stdin_fd_ >= 0) set_nonblocking(s.stdin_fd_);

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return fail(errno, "pipe");
  s.report_fd_ = report[0];

  // Everything the child needs is built before fork.
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const auto candidates = exec_candidates(spec.argv[0], env_value(spec.env, "PATH"));

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(report[1]);
    return fail(e, "fork");
  }
  if (pid == 0) {
    ::close(report[0]);
    run_child(spec, report[1], child_in, child_out, child_err, spec.tty, candidates, argv.data(), envp.data());
  }
  ::close(report[1]);
  cleanup_child_fds();
  set_nonblocking(s.report_fd_);
  s.pid_ = pid;
  s.started_at_ = Clock::now();
  if (spec.timeout_ms > 0) s.timeout_at_ = s.started_at_ + std::chrono::milliseconds(spec.timeout_ms);
  return session;
}

ExecSession::~ExecSession() {
  close_fd(report_fd_);
  close_fd(stdout_fd_);
  close_fd(stderr_fd_);
  close_fd(stdin_fd_);
  if (master_fd_ >= 0 && master_fd_ != stdout_fd_) close_fd(master_fd_);
}

void ExecSession::send_error(int err, const std::string& what) {
  ctx_.outbox.control(channel_, protocol::make_error(error_code_for_errno(err), what + ": " + std::strerror(err)));
}

void ExecSession::on_frame(const protocol::Frame& frame) {
  if (state_ == State::done || state_ == State::failed) return;
  if (frame.type == FrameType::stdin_data) {
    if (stdin_fd_ < 0 || stdin_eof_) return;  // stdin not requested, or already ended
    if (frame.payload.empty()) {
      stdin_eof_ = true;
      if (tty_) stdin_buffer_.push_back('\x04');
    } else {
      stdin_buffer_ += frame.payload;
    }
    write_stdin();
    return;
  }
  if (frame.type != FrameType::control) return;
  auto message = protocol::parse_control(frame.payload);
  if (!message) return;
  const std::string op = protocol::op_of(*message);
  if (op == "signal") {
    const auto sig = protocol::get_int(*message, "signal");
    if (sig && *sig >= 1 && *sig <= 64) kill_group(static_cast<int>(*sig));
  } else if (op == "cancel") {
    cancelled_ = true;
    kill_group(SIGKILL);
  } else if (op == "resize") {
    const auto rows = protocol::get_int(*message, "rows");
    const auto cols = protocol::get_int(*message, "cols");
    if (master_fd_ >= 0 && rows && cols && *rows >= 1 && *rows <= 65535 && *cols >= 1 && *cols <= 65535) {
      winsize ws{};
      ws.ws_row = static_cast<unsigned short>(*rows);
      ws.ws_col = static_cast<unsigned short>(*cols);
      ::ioctl(master_fd_, TIOCSWINSZ, &ws);  // the kernel sends SIGWINCH to the foreground group
    }
  }
}

void ExecSession::kill_group(int signal) {
  // The group outlives its leader while any member lives, so this works after reaping
  // too; ESRCH just means everyone is gone.
  if (pid_ > 0) ::kill(-pid_, signal);
}

void ExecSession::add_polls(PollSet& polls) {
  if (state_ == State::starting || state_ == State::failed) {
    if (report_fd_ >= 0) polls.add(report_fd_, POLLIN, [this](short) { read_start_report(); });
    return;
  }
  if (state_ != State::running) return;
  if (!ctx_.outbox.over_cap()) {
    if (stdout_fd_ >= 0) polls.add(stdout_fd_, POLLIN, [this](short) { read_output(stdout_fd_, FrameType::stdout_data); });
    if (stderr_fd_ >= 0) polls.add(stderr_fd_, POLLIN, [this](short) { read_output(stderr_fd_, FrameType::stderr_data); });
  }
  if (stdin_fd_ >= 0 && (!stdin_buffer_.empty() || stdin_eof_))
    polls.add(stdin_fd_, POLLOUT, [this](short) { write_stdin(); });
}

void ExecSession::read_start_report() {
  if (state_ == State::done) return;
  StartReport report{};
  char buffer[sizeof(StartReport)];
  const ssize_t n = ::read(report_fd_, buffer, sizeof(buffer));
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  close_fd(report_fd_);
  if (state_ == State::failed) {
    maybe_complete();
    return;
  }
  if (n == static_cast<ssize_t>(sizeof(StartReport))) {
    std::memcpy(&report, buffer, sizeof(report));
    report.stage[sizeof(report.stage) - 1] = '\0';
    state_ = State::failed;
    send_error(report.error, report.stage);
    close_fd(stdout_fd_);
    close_fd(stderr_fd_);
    close_fd(stdin_fd_);
    maybe_complete();
    return;
  }
  // EOF: the exec happened (close-on-exec closed the pipe).
  state_ = State::running;
  ctx_.outbox.message(channel_, Json{{"op", "started"}, {"pid", pid_}});
  maybe_complete();
}

void ExecSession::read_output(int& fd, FrameType type) {
  if (state_ != State::running || fd < 0) return;
  char buffer[kReadChunk];
  const ssize_t n = ::read(fd, buffer, sizeof(buffer));
  if (n > 0) {
    last_output_ = Clock::now();
    ctx_.outbox.data(type, channel_, std::string_view(buffer, static_cast<std::size_t>(n)));
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  // 0 is EOF on a pipe; a terminal master reports EIO once the last slave fd closed.
  if (fd == master_fd_) master_fd_ = -1;
  close_fd(fd);
  maybe_complete();
}

void ExecSession::write_stdin() {
  if (stdin_fd_ < 0 || state_ == State::done) return;
  while (!stdin_buffer_.empty()) {
    const ssize_t n = ::write(stdin_fd_, stdin_buffer_.data(), stdin_buffer_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      // EPIPE: the command closed its stdin; the rest has nowhere to go.
      stdin_buffer_.clear();
      close_stdin();
      return;
    }
    stdin_buffer_.erase(0, static_cast<std::size_t>(n));
  }
  if (stdin_eof_) close_stdin();
}

void ExecSession::close_stdin() {
  close_fd(stdin_fd_);
  std::string().swap(stdin_buffer_);
}

void ExecSession::on_reaped(int wait_status) {
  reaped_ = true;
  wait_status_ = wait_status;
  reaped_at_ = Clock::now();
  maybe_complete();
}

std::optional<Clock::time_point> ExecSession::deadline() const {
  if (state_ == State::done) return std::nullopt;
  if (!reaped_) {
    if (timeout_at_ && !timed_out_) return timeout_at_;
    return std::nullopt;
  }
  // While the outbox is full the linger cannot end anyway; the flush wakes the loop.
  if (state_ == State::running && !ctx_.outbox.over_cap()) return std::max(reaped_at_, last_output_) + kLingerAfterExit;
  return std::nullopt;
}

void ExecSession::on_time(Clock::time_point now) {
  if (!reaped_ && timeout_at_ && !timed_out_ && now >= *timeout_at_) {
    timed_out_ = true;
    kill_group(SIGKILL);
    return;
  }
  if (reaped_ && state_ == State::running && !ctx_.outbox.over_cap() &&
      now >= std::max(reaped_at_, last_output_) + kLingerAfterExit) {
    // A descendant still holds stdout/stderr open: stop waiting for it.
    if (stdout_fd_ == master_fd_) master_fd_ = -1;
    close_fd(stdout_fd_);
    close_fd(stderr_fd_);
    maybe_complete();
  }
}

void ExecSession::maybe_complete() {
  if (!reaped_) return;
  if (state_ == State::failed) {
    if (report_fd_ < 0) state_ = State::done;
    return;
  }
  if (state_ != State::running || stdout_fd_ >= 0 || stderr_fd_ >= 0) return;
  Json exit{{"op", "exit"}, {"timed_out", timed_out_}, {"cancelled", cancelled_}};
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(reaped_at_ - started_at_);
  exit["duration_ms"] = duration.count();
  if (WIFSIGNALED(wait_status_)) {
    const int sig = WTERMSIG(wait_status_);
    exit["exit_code"] = 128 + sig;
    exit["signal"] = sig;
    exit["signal_name"] = signal_name(sig);
  } else {
    exit["exit_code"] = WEXITSTATUS(wait_status_);
    exit["signal"] = nullptr;
    exit["signal_name"] = nullptr;
  }
  ctx_.outbox.message(channel_, exit);
  close_stdin();
  state_ = State::done;
}

void ExecSession::abort() {
  if (!reaped_) kill_group(SIGKILL);
  close_fd(report_fd_);
  if (stdout_fd_ == master_fd_) master_fd_ = -1;
  close_fd(stdout_fd_);
  close_fd(stderr_fd_);
  close_stdin();
  close_fd(master_fd_);
  state_ = State::done;
}

}  // namespace airlock::guest
