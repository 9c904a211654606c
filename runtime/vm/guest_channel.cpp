// ctl.sock on Asio; see guest_channel.hpp.
// GCC 12 reports a "potential null dereference" inside Asio's scheduler once it is
// inlined; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "runtime/vm/guest_channel.hpp"

#include <boost/asio.hpp>

namespace airlock::runtime {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

GuestChannel::GuestChannel(asio::io_context& io, std::string socket_path, Handlers handlers)
    : socket_(io), retry_(io), path_(std::move(socket_path)), handlers_(std::move(handlers)) {}

void GuestChannel::connect_when_ready() {
  if (closed_ || connected_) return;
  boost::system::error_code ec;
  if (!socket_.is_open()) socket_.open(local(), ec);
  if (!ec) socket_.connect(local::endpoint(path_), ec);
  if (!ec) {
    connected_ = true;
    if (handlers_.on_connected) handlers_.on_connected();
    start_read();
    flush();
    return;
  }
  socket_.close(ec);
  retry_.expires_after(std::chrono::milliseconds(20));
  retry_.async_wait([this](const boost::system::error_code& e) {
    if (!e) connect_when_ready();
  });
}

void GuestChannel::set_reading(bool enabled) {
  read_enabled_ = enabled;
  if (enabled) start_read();
}

void GuestChannel::start_read() {
  if (!connected_ || reading_ || !read_enabled_ || closed_) return;
  reading_ = true;
  socket_.async_read_some(asio::buffer(buffer_), [this](const boost::system::error_code& ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (ec) {
      connected_ = false;  // QEMU's exit (SIGCHLD) ends the VM
      return;
    }
    if (!decoder_.feed(std::string_view(buffer_.data(), n))) {
      if (handlers_.on_broken) handlers_.on_broken(decoder_.error());
      return;
    }
    while (auto frame = decoder_.next()) {
      if (handlers_.on_frame) handlers_.on_frame(std::move(*frame));
      if (closed_) return;
    }
    start_read();
  });
}

void GuestChannel::send(const protocol::Frame& frame) {
  if (closed_ || frame.payload.size() > protocol::kMaxPayload) return;
  queue_.push_back(protocol::encode_frame(frame.type, frame.channel, frame.payload));
  queued_ += queue_.back().size();
  flush();
}

void GuestChannel::flush() {
  if (!connected_ || writing_ || queue_.empty() || closed_) return;
  writing_ = true;
  asio::async_write(socket_, asio::buffer(queue_.front()), [this](const boost::system::error_code& ec, std::size_t) {
    writing_ = false;
    if (closed_) return;
    if (ec) {
      connected_ = false;
      return;
    }
    queued_ -= queue_.front().size();
    queue_.pop_front();
    if (handlers_.on_drained) handlers_.on_drained();
    flush();
  });
}

void GuestChannel::close() {
  closed_ = true;
  retry_.cancel();
  boost::system::error_code ec;
  socket_.close(ec);
}

}  // namespace airlock::runtime
