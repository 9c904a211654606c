// GuestFlow over a TCP socket; see socket_flow.hpp.
#include "proxy/relay/socket_flow.hpp"

#include <algorithm>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace airlock::relay {

SocketGuestFlow::SocketGuestFlow(asio::ip::tcp::socket socket, std::vector<std::uint8_t> already_read)
    : socket_(std::move(socket)), buffer_(std::move(already_read)), read_chunk_(16 * 1024) {}

void SocketGuestFlow::start(std::shared_ptr<FlowHandler> handler) {
  handler_ = std::move(handler);
  self_ = shared_from_this();
  boost::system::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  handler_->start(*this);
  if (!buffer_.empty() && handler_) handler_->on_readable();
  read_more();
}

std::vector<std::uint8_t> SocketGuestFlow::read(std::size_t max) {
  const std::size_t n = std::min(max, buffer_.size());
  std::vector<std::uint8_t> out(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
  if (n > 0 && !done_) {
    std::weak_ptr<SocketGuestFlow> weak = weak_from_this();
    asio::post(socket_.get_executor(), [weak] {
      if (auto self = weak.lock()) self->read_more();
    });
  }
  return out;
}

std::size_t SocketGuestFlow::send(std::span<const std::uint8_t> bytes) {
  if (done_ || fin_wanted_ || bytes.empty()) return 0;
  if (queued_ >= kMaxQueued) {
    was_full_ = true;
    return 0;
  }
  queue_.emplace_back(bytes.begin(), bytes.end());
  queued_ += bytes.size();
  if (queued_ > kMaxQueued) was_full_ = true;  // congested(): on_writable() when it drains
  write_more();
  return bytes.size();
}

void SocketGuestFlow::shutdown_write() {
  fin_wanted_ = true;
  write_more();
}

void SocketGuestFlow::abort() {
  if (done_) return;
  boost::system::error_code ec;
  socket_.set_option(asio::socket_base::linger(true, 0), ec);
  socket_.close(ec);
  std::weak_ptr<SocketGuestFlow> weak = weak_from_this();
  asio::post(socket_.get_executor(), [weak] {
    if (auto self = weak.lock()) self->finish(FlowHandler::Close::abortive);
  });
}

void SocketGuestFlow::read_more() {
  if (done_ || reading_ || eof_ || buffer_.size() >= kMaxBuffered) return;
  reading_ = true;
  socket_.async_read_some(
      asio::buffer(read_chunk_),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        self->reading_ = false;
        if (self->done_) return;
        if (ec == asio::error::eof) {
          self->eof_ = true;
          if (self->handler_) self->handler_->on_read_closed();
          self->maybe_finish();
          return;
        }
        if (ec) {
          self->finish(FlowHandler::Close::abortive);
          return;
        }
        self->buffer_.insert(self->buffer_.end(), self->read_chunk_.begin(),
                             self->read_chunk_.begin() + static_cast<std::ptrdiff_t>(n));
        if (self->handler_) self->handler_->on_readable();
        self->read_more();
      });
}

void SocketGuestFlow::write_more() {
  if (done_ || writing_) return;
  if (queue_.empty()) {
    if (fin_wanted_ && !fin_sent_) {
      fin_sent_ = true;
      boost::system::error_code ec;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
      maybe_finish();
    }
    return;
  }
  writing_ = true;
  writing_buffer_ = std::move(queue_.front());
  queue_.pop_front();
  asio::async_write(socket_, asio::buffer(writing_buffer_),
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      self->writing_ = false;
                      if (self->done_) return;
                      self->queued_ -= std::min(self->queued_, self->writing_buffer_.size());
                      if (ec) {
                        self->finish(FlowHandler::Close::abortive);
                        return;
                      }
                      if (self->was_full_ && self->queued_ < kMaxQueued / 2) {
                        self->was_full_ = false;
                        if (self->handler_) self->handler_->on_writable();
                      }
                      self->write_more();
                    });
}

void SocketGuestFlow::maybe_finish() {
  if (eof_ && fin_sent_ && !writing_ && queue_.empty()) finish(FlowHandler::Close::graceful);
}

void SocketGuestFlow::finish(FlowHandler::Close how) {
  if (done_) return;
  done_ = true;
  boost::system::error_code ec;
  socket_.close(ec);
  if (auto handler = std::move(handler_)) handler->on_closed(how);
  self_.reset();  // may destroy this
}

}  // namespace airlock::relay
