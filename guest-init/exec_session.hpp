// One running command: its process, its pipes or terminal, and its exit report.
//
// Theory of operation. start() forks a child that puts itself in a new session (so the
// command and everything it spawns form one process group that timeout and cancel can
// kill together), wires stdio to pipes or to a fresh pseudo-terminal, applies the
// sandbox, changes directory and execs, searching PATH of the request's environment.
// The child reports a failure before exec through a close-on-exec pipe; the parent
// polls that pipe, so "started" is sent only when exec really happened and a failure
// becomes an {"op":"error"} instead. Then:
//   starting --exec ok--> running --leader reaped + stdout/stderr EOF--> done ("exit")
//   starting --exec failed--> failed (error sent; the child is reaped silently)
// Output is read only while the outbox is under its cap, so a slow host throttles the
// child through its pipe. Output of a process that outlives the leader (a daemon keeping
// stdout open) is read for kLingerAfterExit after the leader's last output, then the
// pipes are closed and the exit is reported, so "sleep 100 &" cannot hang an exec.
// With a terminal all output arrives as stdout_data and the end of stdin is sent as the
// terminal's EOF character (^D) rather than a close.
// Refuses: stdin beyond kMaxPendingStdin stalls reading from the host (the loop stops
// reading the port) instead of growing without bound; the exec's timeout still fires.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "guest-init/exec_spec.hpp"
#include "guest-init/session.hpp"

namespace airlock::guest {

inline constexpr std::size_t kMaxPendingStdin = 4 * 1024 * 1024;
inline constexpr std::chrono::milliseconds kLingerAfterExit{1000};

class ExecSession final : public Session {
 public:
  // Forks the command. On failure to fork (or to create pipes) the error is already
  // sent and the returned session is finished.
  static std::unique_ptr<ExecSession> start(std::uint32_t channel, const ExecSpec& spec, SessionContext ctx);
  ~ExecSession() override;

  void on_frame(const protocol::Frame& frame) override;
  void add_polls(PollSet& polls) override;
  std::optional<Clock::time_point> deadline() const override;
  void on_time(Clock::time_point now) override;
  pid_t pid() const override { return reaped_ ? -1 : pid_; }
  void on_reaped(int wait_status) override;
  void abort() override;
  bool finished() const override { return state_ == State::done; }
  bool blocks_input() const override { return stdin_buffer_.size() > kMaxPendingStdin; }

 private:
  enum class State { starting, running, failed, done };

  ExecSession(std::uint32_t channel, SessionContext ctx) : channel_(channel), ctx_(ctx) {}
  void read_start_report();
  void read_output(int& fd, protocol::FrameType type);
  void write_stdin();
  void close_stdin();
  void kill_group(int signal);
  void maybe_complete();
  void send_error(int err, const std::string& what);

  std::uint32_t channel_;
  SessionContext ctx_;
  State state_ = State::starting;
  pid_t pid_ = -1;
  bool tty_ = false;
  bool reaped_ = false;
  int wait_status_ = 0;
  bool timed_out_ = false;
  bool cancelled_ = false;
  Clock::time_point started_at_{};
  Clock::time_point reaped_at_{};
  Clock::time_point last_output_{};
  std::optional<Clock::time_point> timeout_at_;

  int report_fd_ = -1;  // child's pre-exec error pipe
  int stdout_fd_ = -1;  // pipe, or the terminal master
  int stderr_fd_ = -1;
  int stdin_fd_ = -1;   // pipe write end, or a dup of the terminal master
  int master_fd_ = -1;  // terminal master kept for resize
  std::string stdin_buffer_;
  bool stdin_eof_ = false;
  std::string report_;
};

}  // namespace airlock::guest
