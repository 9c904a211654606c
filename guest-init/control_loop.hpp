// The control server: guest-init's single-threaded event loop after boot.
//
// Theory of operation. One poll(2) loop owns every fd: the control port, a signalfd
// (SIGCHLD, SIGTERM, SIGINT, SIGPWR, SIGHUP, SIGIO), the inotify fd, and whatever the
// sessions ask for. Frames from the host are decoded (protocol::FrameDecoder) and
// dispatched by channel: channel 0 carries connection-level ops (shutdown, ping), any
// other channel is one request, whose first CONTROL frame (exec, file.*) creates a
// Session and whose later frames go to it. Replies go through the Outbox, flushed when
// the port is writable.
//
// Host link: the port reports POLLHUP while no host is connected (the supervisor has
// not connected to the QEMU socket yet, or went away). The loop then stops polling the
// port and re-checks it on SIGIO (the driver signals connection changes) and at least
// every kReconnectPoll. Losing the host aborts every session (their processes are
// killed: nobody is left to read their output) and a fresh hello is queued for the next
// connection. A malformed frame stream is treated the same way.
//
// File events are only queued while a host is connected (nobody would read them).
//
// Reaping: as PID 1 the loop adopts every orphan. On SIGCHLD it reaps all children;
// a pid that belongs to a session's command goes to that session, any other is simply
// collected. Shutdown (host op or SIGTERM/SIGINT/SIGPWR) ends run(); the caller powers off.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "guest-init/cmdline.hpp"
#include "guest-init/file_watch.hpp"
#include "guest-init/outbox.hpp"
#include "guest-init/session.hpp"
#include "protocol/frame.hpp"

namespace airlock::guest {

inline constexpr std::size_t kMaxSessions = 1024;
inline constexpr std::chrono::milliseconds kReconnectPoll{100};

class ControlServer {
 public:
  // port_fd: the opened control port; watch may have no fd (events disabled).
  ControlServer(const BootConfig& config, int port_fd, FileWatch& watch, std::string hello);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Runs until shutdown is requested.
  void run();
  // Kills the sessions' processes without reply (used on the way to power-off).
  void abort_sessions();

 private:
  void on_port(short revents);
  void on_signal();
  void on_frame(const protocol::Frame& frame);
  void on_request(const protocol::Frame& frame);
  void check_connected();
  void link_lost(const std::string& why);
  void reap();
  Outbox& event_sink();

  const BootConfig& config_;
  int port_fd_;
  FileWatch& watch_;
  std::string hello_;
  int signal_fd_ = -1;
  bool connected_ = false;
  bool shutdown_ = false;
  Outbox outbox_;
  Outbox dropped_events_;
  protocol::FrameDecoder decoder_;
  std::map<std::uint32_t, std::unique_ptr<Session>> sessions_;
};

// The signals guest-init takes through its signalfd; blocked in main before anything else.
void block_init_signals();

}  // namespace airlock::guest
