// GuestFlow over a TCP socket; see socket_flow.hpp.
#include "proxy/standalone/socket_flow.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>

namespace airlock::standalone {

SocketGuestFlow::SocketGuestFlow(std::shared_ptr<flow::ByteStream> stream, std::vector<std::uint8_t> already_read)
    : stream_(std::move(stream)), buffer_(std::move(already_read)) {
  bytes_in_ = buffer_.size();
}

void SocketGuestFlow::start(std::shared_ptr<flow::FlowHandler> handler) {
  handler_ = std::move(handler);
  self_ = shared_from_this();
  std::weak_ptr<SocketGuestFlow> weak = weak_from_this();
  stream_->set_handlers(flow::ByteStream::Handlers{
      [weak](std::span<const std::uint8_t> data) {
        auto self = weak.lock();
        if (!self || self->done_) return;
        self->bytes_in_ += data.size();
        self->buffer_.insert(self->buffer_.end(), data.begin(), data.end());
        self->update_reading();
        if (self->handler_) self->handler_->on_readable();
      },
      [weak] {
        auto self = weak.lock();
        if (!self || self->done_) return;
        self->eof_ = true;
        if (self->handler_) self->handler_->on_read_closed();
        self->maybe_finish();
      },
      [weak](const boost::system::error_code&) {
        if (auto self = weak.lock()) self->finish(flow::FlowHandler::Close::abortive, "reset_by_guest");
      },
      [weak] {
        auto self = weak.lock();
        if (!self || self->done_) return;
        if (self->was_full_) {
          self->was_full_ = false;
          if (self->handler_) self->handler_->on_writable();
        }
        self->maybe_finish();
      }});
  handler_->start(*this);
  if (!buffer_.empty() && handler_) handler_->on_readable();
  update_reading();
}

void SocketGuestFlow::update_reading() {
  if (!done_) stream_->read(!eof_ && buffer_.size() < kMaxBuffered);
}

std::vector<std::uint8_t> SocketGuestFlow::read(std::size_t max) {
  const std::size_t n = std::min(max, buffer_.size());
  std::vector<std::uint8_t> out(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
  if (n > 0) update_reading();
  return out;
}

std::size_t SocketGuestFlow::send(std::span<const std::uint8_t> bytes) {
  if (done_ || fin_sent_ || bytes.empty()) return 0;
  if (stream_->queued() >= kMaxQueued) {
    was_full_ = true;
    return 0;
  }
  stream_->write(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  bytes_out_ += bytes.size();
  if (stream_->queued() >= kMaxQueued) was_full_ = true;
  return bytes.size();
}

void SocketGuestFlow::shutdown_write() {
  if (done_ || fin_sent_) return;
  fin_sent_ = true;
  stream_->shutdown();
  std::weak_ptr<SocketGuestFlow> weak = weak_from_this();
  boost::asio::post(stream_->socket().get_executor(), [weak] {
    if (auto self = weak.lock()) self->maybe_finish();
  });
}

void SocketGuestFlow::abort() {
  if (done_) return;
  stream_->reset();
  std::weak_ptr<SocketGuestFlow> weak = weak_from_this();
  boost::asio::post(stream_->socket().get_executor(), [weak] {
    if (auto self = weak.lock()) self->finish(flow::FlowHandler::Close::abortive, "aborted");
  });
}

void SocketGuestFlow::maybe_finish() {
  if (eof_ && fin_sent_ && stream_->queued() == 0) finish(flow::FlowHandler::Close::graceful, "closed");
}

void SocketGuestFlow::finish(flow::FlowHandler::Close how, std::string_view reason) {
  if (done_) return;
  done_ = true;
  if (how == flow::FlowHandler::Close::abortive) stream_->reset();
  else stream_->close();
  if (auto handler = std::move(handler_)) handler->on_closed(how, flow::CloseInfo{reason, bytes_in_, bytes_out_});
  self_.reset();  // may destroy this
}

}  // namespace airlock::standalone
