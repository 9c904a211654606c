// The opaque byte relay; see relay_flow.hpp for the theory of operation.
#include "proxy/relay/relay_flow.hpp"

#include <span>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>

namespace airlock::relay {

RelayFlow::RelayFlow(asio::ip::tcp::socket upstream, std::size_t chunk)
    : socket_(std::move(upstream)), read_buffer_(chunk), chunk_(chunk) {}

void RelayFlow::start(GuestFlow& guest) {
  guest_ = &guest;
  boost::system::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);  // the guest's TCP already batches
  read_upstream();
  pump_guest();
}

void RelayFlow::on_readable() { pump_guest(); }
void RelayFlow::on_read_closed() { pump_guest(); }

void RelayFlow::on_writable() {
  deliver();
  read_upstream();
}

void RelayFlow::on_closed(Close how) {
  guest_ = nullptr;
  if (how == Close::abortive) {
    close_upstream(true);
  } else if (writing_) {
    close_after_write_ = true;  // let the last guest bytes reach the upstream first
  } else {
    close_upstream(false);
  }
}

void RelayFlow::read_upstream() {
  if (closed_ || guest_ == nullptr || reading_ || upstream_eof_) return;
  if (pending_offset_ < pending_.size() || guest_->congested()) return;
  reading_ = true;
  socket_.async_read_some(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        self->reading_ = false;
        if (self->closed_ || self->guest_ == nullptr) return;
        if (ec == asio::error::eof) {
          self->upstream_eof_ = true;
          self->deliver();  // sends the FIN (nothing is pending)
          return;
        }
        if (ec) {
          // Reset or error upstream: the guest sees a reset, the socket goes.
          self->guest_->abort();
          self->close_upstream(true);
          return;
        }
        self->pending_.assign(self->read_buffer_.begin(),
                              self->read_buffer_.begin() + static_cast<std::ptrdiff_t>(n));
        self->pending_offset_ = 0;
        self->deliver();
        self->read_upstream();
      });
}

void RelayFlow::deliver() {
  if (guest_ == nullptr) return;
  while (pending_offset_ < pending_.size()) {
    const std::size_t taken =
        guest_->send(std::span<const std::uint8_t>(pending_).subspan(pending_offset_));
    if (taken == 0) return;  // full: on_writable() resumes
    pending_offset_ += taken;
    to_guest_ += taken;
  }
  pending_.clear();
  pending_offset_ = 0;
  if (upstream_eof_ && !fin_to_guest_) {
    fin_to_guest_ = true;
    guest_->shutdown_write();
  }
}

void RelayFlow::pump_guest() {
  if (closed_ || guest_ == nullptr || writing_ || upstream_shut_) return;
  std::vector<std::uint8_t> data = guest_->read(chunk_);
  if (data.empty()) {
    if (guest_->read_closed()) {
      upstream_shut_ = true;
      boost::system::error_code ec;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    }
    return;
  }
  writing_ = true;
  write_buffer_ = std::move(data);
  asio::async_write(
      socket_, asio::buffer(write_buffer_),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        self->writing_ = false;
        self->to_upstream_ += n;
        if (self->closed_) return;
        if (ec) {
          if (self->guest_ != nullptr) self->guest_->abort();
          self->close_upstream(true);
          return;
        }
        if (self->close_after_write_) {
          self->close_upstream(false);
          return;
        }
        self->pump_guest();
      });
}

void close_upstream_socket(asio::ip::tcp::socket& socket, bool abortive, bool& shut) {
  boost::system::error_code ec;
  if (abortive) {
    socket.set_option(asio::socket_base::linger(true, 0), ec);
  } else if (!shut) {
    shut = true;
    socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  }
  socket.close(ec);
}

void RelayFlow::close_upstream(bool abortive) {
  if (closed_) return;
  closed_ = true;
  close_upstream_socket(socket_, abortive, upstream_shut_);
}

}  // namespace airlock::relay
