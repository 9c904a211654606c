// Async supervisor connection; see supervisor_link.hpp.
// GCC 12 reports a "potential null dereference" inside Asio's scheduler once it is
// inlined; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "runtime/api/supervisor_link.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio.hpp>

#include "protocol/messages.hpp"

namespace airlock::api {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using protocol::Frame;

SupervisorLink::SupervisorLink(asio::io_context& io) : socket_(io) {}

SupervisorLink::~SupervisorLink() {
  boost::system::error_code ec;
  socket_.close(ec);
}

Result<std::shared_ptr<SupervisorLink>> SupervisorLink::connect(asio::io_context& io,
                                                                const std::filesystem::path& api_sock) {
  std::shared_ptr<SupervisorLink> link(new SupervisorLink(io));
  std::string path = api_sock.string();
  int dir_fd = -1;
  if (path.size() >= 100) {
    // Long homes: reach the socket through a short /proc/self/fd path to its folder.
    dir_fd = ::open(api_sock.parent_path().c_str(), O_PATH | O_CLOEXEC);
    if (dir_fd < 0) return Error{"can't open " + api_sock.parent_path().string()};
    path = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + api_sock.filename().string();
  }
  boost::system::error_code ec;
  link->socket_.connect(local::endpoint(path), ec);  // a Unix socket connects at once
  if (dir_fd >= 0) ::close(dir_fd);
  if (ec) return Error{"can't reach the VM's supervisor: " + ec.message()};
  link->start_read();
  return link;
}

std::uint32_t SupervisorLink::open(Handler handler) {
  std::uint32_t channel = next_channel_++;
  if (channel == 0) channel = next_channel_++;
  handlers_[channel] = std::move(handler);
  return channel;
}

void SupervisorLink::close(std::uint32_t channel) { handlers_.erase(channel); }

void SupervisorLink::send(protocol::FrameType type, std::uint32_t channel, std::string_view payload) {
  if (!alive_ || payload.size() > protocol::kMaxPayload) return;
  queue_.push_back(protocol::encode_frame(type, channel, payload));
  queued_ += queue_.back().size();
  flush();
}

void SupervisorLink::send_control(std::uint32_t channel, const nlohmann::json& message) {
  send(protocol::FrameType::control, channel, protocol::dump(message));
}

void SupervisorLink::send_data(protocol::FrameType type, std::uint32_t channel, std::string_view bytes) {
  while (!bytes.empty()) {
    const std::size_t n = std::min(bytes.size(), protocol::kMaxPayload);
    send(type, channel, bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
}

void SupervisorLink::set_reading(bool enabled) {
  read_enabled_ = enabled;
  if (enabled) start_read();
}

void SupervisorLink::start_read() {
  if (!alive_ || reading_ || !read_enabled_) return;
  reading_ = true;
  socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                             std::size_t n) {
    self->reading_ = false;
    if (!self->alive_) return;
    if (ec || !self->decoder_.feed(std::string_view(self->buffer_.data(), n))) {
      self->lost();
      return;
    }
    while (auto frame = self->decoder_.next()) {
      auto it = self->handlers_.find(frame->channel);
      if (it == self->handlers_.end()) continue;
      Handler handler = it->second;  // a copy: the handler may close its own channel
      handler(&*frame);
      if (!self->alive_) return;
    }
    self->start_read();
  });
}

void SupervisorLink::flush() {
  if (!alive_ || writing_ || queue_.empty()) return;
  writing_ = true;
  asio::async_write(socket_, asio::buffer(queue_.front()),
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      self->writing_ = false;
                      if (!self->alive_) return;
                      if (ec) {
                        self->lost();
                        return;
                      }
                      self->queued_ -= self->queue_.front().size();
                      self->queue_.pop_front();
                      if (self->on_drained) self->on_drained();
                      self->flush();
                    });
}

void SupervisorLink::lost() {
  if (!alive_) return;
  alive_ = false;
  boost::system::error_code ec;
  socket_.close(ec);
  queue_.clear();
  queued_ = 0;
  auto handlers = std::move(handlers_);
  handlers_.clear();
  for (auto& [channel, handler] : handlers) handler(nullptr);
}

void SupervisorLink::shut_down() { lost(); }

}  // namespace airlock::api
