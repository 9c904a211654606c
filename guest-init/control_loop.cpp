// guest-init's event loop (see control_loop.hpp).
#include "guest-init/control_loop.hpp"
#include "guest-init/trust.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest-init/exec_session.hpp"
#include "guest-init/exec_spec.hpp"
#include "guest-init/files.hpp"
#include "guest-init/log.hpp"
#include "protocol/messages.hpp"

namespace airlock::guest {
namespace {

using protocol::FrameType;
using protocol::Json;

sigset_t init_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGPWR, SIGHUP, SIGIO}) sigaddset(&set, sig);
  return set;
}

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

void block_init_signals() {
  const sigset_t set = init_signals();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
}

ControlServer::ControlServer(const BootConfig& config, int port_fd, FileWatch& watch, std::string hello)
    : config_(config), port_fd_(port_fd), watch_(watch), hello_(std::move(hello)) {
  const sigset_t set = init_signals();
  signal_fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) log_errno("signalfd", errno);
  // Ask the driver for SIGIO on host connect/disconnect, so reconnection is noticed at once.
  ::fcntl(port_fd_, F_SETOWN, ::getpid());
  ::fcntl(port_fd_, F_SETFL, ::fcntl(port_fd_, F_GETFL) | O_ASYNC);
  outbox_.control(protocol::kConnectionChannel, hello_);
}

ControlServer::~ControlServer() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

void ControlServer::run() {
  check_connected();
  while (!shutdown_) {
    PollSet polls;
    bool input_blocked = false;
    for (const auto& [channel, session] : sessions_) input_blocked = input_blocked || session->blocks_input();
    if (connected_) {
      short events = 0;
      if (!input_blocked) events |= POLLIN;
      if (!outbox_.empty()) events |= POLLOUT;
      polls.add(port_fd_, events, [this](short revents) { on_port(revents); });
    }
    if (signal_fd_ >= 0) polls.add(signal_fd_, POLLIN, [this](short) { on_signal(); });
    // Without a host, events have no reader: drain them into a queue that is dropped,
    // so a guest left alone cannot grow the outbox without bound.
    if (watch_.fd() >= 0) polls.add(watch_.fd(), POLLIN, [this](short) { watch_.on_readable(event_sink()); });
    for (const auto& [channel, session] : sessions_) session->add_polls(polls);

    // Sleep until an fd is ready, the next deadline, or (disconnected) the next re-check.
    int timeout_ms = -1;
    const auto now = Clock::now();
    auto consider = [&](Clock::time_point when) {
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(when - now).count();
      const int bounded = static_cast<int>(std::clamp<std::int64_t>(ms, 0, 60'000));
      timeout_ms = timeout_ms < 0 ? bounded : std::min(timeout_ms, bounded);
    };
    for (const auto& [channel, session] : sessions_) {
      if (session->has_work()) consider(now);
      if (auto when = session->deadline()) consider(*when);
    }
    if (!connected_) consider(now + kReconnectPoll);
    if (auto when = watch_.deadline()) consider(*when);

    std::vector<pollfd> fds;
    fds.reserve(polls.entries.size());
    for (const auto& e : polls.entries) fds.push_back({e.fd, e.events, 0});
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) {
      log_errno("poll", errno);
      break;
    }
    for (std::size_t i = 0; ready > 0 && i < fds.size(); ++i) {
      if (fds[i].revents != 0) polls.entries[i].handler(fds[i].revents);
    }
    if (!connected_) check_connected();
    for (const auto& [channel, session] : sessions_) {
      if (session->has_work()) session->work();
    }
    const auto after = Clock::now();
    if (auto when = watch_.deadline(); when && *when <= after) watch_.on_time(event_sink(), after);
    dropped_events_.clear();
    for (const auto& [channel, session] : sessions_) {
      if (auto when = session->deadline(); when && *when <= after) session->on_time(after);
    }
    std::erase_if(sessions_, [](const auto& entry) { return entry.second->finished(); });
    if (connected_ && !outbox_.empty() && !outbox_.flush_to(port_fd_)) link_lost("write to control port failed");
  }
}

Outbox& ControlServer::event_sink() { return connected_ ? outbox_ : dropped_events_; }

void ControlServer::check_connected() {
  pollfd p{port_fd_, POLLIN | POLLOUT, 0};
  if (::poll(&p, 1, 0) < 0) return;
  const bool up = (p.revents & POLLHUP) == 0 || (p.revents & POLLIN) != 0;
  if (up && !connected_) connected_ = true;
}

void ControlServer::link_lost(const std::string& why) {
  if (!why.empty()) log_line(why);
  abort_sessions();
  decoder_ = protocol::FrameDecoder();
  outbox_.clear();
  outbox_.control(protocol::kConnectionChannel, hello_);
  connected_ = false;
}

void ControlServer::abort_sessions() {
  // Aborted sessions report finished() and are erased by the loop's sweep, not here:
  // poll handlers of this turn may still point at them.
  for (auto& [channel, session] : sessions_) session->abort();
}

void ControlServer::on_port(short revents) {
  if (revents & POLLIN) {
    char buffer[64 * 1024];
    // Read a bounded amount per turn so one busy host cannot starve child output.
    for (int round = 0; round < 8; ++round) {
      const ssize_t n = ::read(port_fd_, buffer, sizeof(buffer));
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        return link_lost("control port read failed");
      }
      if (n == 0) return link_lost("");  // host disconnected
      if (!decoder_.feed(std::string_view(buffer, static_cast<std::size_t>(n)))) {
        return link_lost("bad frame from host: " + decoder_.error());
      }
      while (auto frame = decoder_.next()) on_frame(*frame);
      if (decoder_.failed()) return link_lost("bad frame from host: " + decoder_.error());
      if (shutdown_) return;
      bool blocked = false;
      for (const auto& [channel, session] : sessions_) blocked = blocked || session->blocks_input();
      if (blocked) break;
    }
  } else if (revents & (POLLHUP | POLLERR)) {
    return link_lost("");
  }
  if ((revents & POLLOUT) && !outbox_.flush_to(port_fd_)) link_lost("write to control port failed");
}

void ControlServer::on_signal() {
  signalfd_siginfo info{};
  while (::read(signal_fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
    switch (info.ssi_signo) {
      case SIGCHLD:
        reap();
        break;
      case SIGTERM:
      case SIGINT:
      case SIGPWR:
        log_line("shutdown requested by signal");
        shutdown_ = true;
        break;
      case SIGIO:
        check_connected();
        break;
      default:
        break;
    }
  }
  // SIGCHLD coalesces; reaping every turn it fires is enough, but reap once more in
  // case a child exited between the read and now.
  reap();
}

void ControlServer::reap() {
  while (true) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (auto& [channel, session] : sessions_) {
      if (session->pid() == pid) {
        session->on_reaped(status);
        break;
      }
    }
    // Not a session's command: an orphan adopted by PID 1, collected and forgotten.
  }
}

void ControlServer::on_frame(const protocol::Frame& frame) {
  if (frame.channel == protocol::kConnectionChannel) {
    if (frame.type != FrameType::control) return;
    auto message = protocol::parse_control(frame.payload);
    if (!message) return;
    const std::string op = protocol::op_of(*message);
    if (op == "shutdown") {
      log_line("shutdown requested by host");
      shutdown_ = true;
    } else if (op == "ping") {
      outbox_.message(protocol::kConnectionChannel, Json{{"op", "pong"}});
    } else if (op == "trust_ca") {
      const std::string error = install_ca(protocol::get_string(*message, "pem").value_or(""));
      if (error.empty()) {
        log_line("trusting the VM's CA");
        outbox_.message(protocol::kConnectionChannel, Json{{"op", "trust_ca.ok"}});
      } else {
        outbox_.message(protocol::kConnectionChannel, Json{{"op", "trust_ca.error"}, {"message", error}});
      }
    }
    return;
  }
  if (auto it = sessions_.find(frame.channel); it != sessions_.end()) {
    it->second->on_frame(frame);
    return;
  }
  // Data for a channel that already finished (e.g. the tail of a refused file.write)
  // has nowhere to go.
  if (frame.type == FrameType::control) on_request(frame);
}

void ControlServer::on_request(const protocol::Frame& frame) {
  auto message = protocol::parse_control(frame.payload);
  if (!message) {
    outbox_.control(frame.channel, protocol::make_error(protocol::error_code::invalid, "control payload is not a JSON object with an op"));
    return;
  }
  const std::string op = protocol::op_of(*message);
  // Follow-ups to an exec that already ended: nothing to do, and no reply is expected.
  if (op == "signal" || op == "cancel" || op == "resize") return;
  if (sessions_.size() >= kMaxSessions) {
    outbox_.control(frame.channel, protocol::make_error(protocol::error_code::busy, "too many requests in flight"));
    return;
  }
  SessionContext ctx{outbox_, &watch_};
  if (op == "exec") {
    ExecDefaults defaults;
    defaults.workspace = config_.workspace;
    defaults.sandbox_uid = config_.uid;
    defaults.passwd = parse_passwd(read_file("/etc/passwd"));
    ExecParse parsed = parse_exec_spec(*message, defaults);
    if (!parsed.spec) {
      outbox_.control(frame.channel, protocol::make_error(parsed.error.code, parsed.error.message));
      return;
    }
    auto session = ExecSession::start(frame.channel, *parsed.spec, ctx);
    if (!session->finished()) sessions_[frame.channel] = std::move(session);
    return;
  }
  if (op.rfind("file.", 0) == 0) {
    if (auto session = handle_file_request(op, frame.channel, *message, ctx)) sessions_[frame.channel] = std::move(session);
    return;
  }
  outbox_.control(frame.channel, protocol::make_error(protocol::error_code::invalid, "unknown op '" + op + "'"));
}

}  // namespace airlock::guest
