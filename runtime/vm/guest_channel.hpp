// The supervisor's end of the guest's control channel (ctl.sock, created by QEMU) on
// Asio: connects as soon as QEMU has made the socket, decodes frames, queues writes.
// A malformed frame stream from the guest is reported (the supervisor stops the VM: the
// protocol never resynchronises); a closed socket is reported too (QEMU's exit, seen by
// SIGCHLD, is what ends the VM). Reading can be paused for flow control.
#pragma once

#include <array>
#include <deque>
#include <functional>
#include <string>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "protocol/frame.hpp"

namespace airlock::runtime {

class GuestChannel {
 public:
  struct Handlers {
    std::function<void()> on_connected;
    std::function<void(protocol::Frame)> on_frame;
    std::function<void(const std::string& why)> on_broken;  // malformed frames
    std::function<void()> on_drained;                       // a write finished
  };

  GuestChannel(boost::asio::io_context& io, std::string socket_path, Handlers handlers);

  // Retries every 20 ms until the socket accepts.
  void connect_when_ready();
  void send(const protocol::Frame& frame);
  std::size_t backlog() const { return queued_; }
  bool connected() const { return connected_; }
  // Pausing stops reading after the read in progress; resuming restarts it.
  void set_reading(bool enabled);
  void close();

 private:
  void start_read();
  void flush();

  boost::asio::local::stream_protocol::socket socket_;
  boost::asio::steady_timer retry_;
  std::string path_;
  Handlers handlers_;
  protocol::FrameDecoder decoder_;
  std::array<char, 64 * 1024> buffer_{};
  std::deque<std::string> queue_;
  std::size_t queued_ = 0;
  bool connected_ = false;
  bool writing_ = false;
  bool reading_ = false;
  bool read_enabled_ = true;
  bool closed_ = false;
};

}  // namespace airlock::runtime
