// The shared socket loop; see stream.hpp.
#include "proxy/flow/stream.hpp"

#include <array>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace airlock::flow {

namespace {

constexpr std::size_t kScratch = 64 * 1024;
constexpr std::size_t kMaxGather = 64;

std::span<std::uint8_t> scratch() {
  thread_local std::array<std::uint8_t, kScratch> buffer;
  return buffer;
}

}  // namespace

std::shared_ptr<ByteStream> ByteStream::create(asio::ip::tcp::socket socket) {
  return std::make_shared<ByteStream>(std::move(socket), Marks{});
}

std::shared_ptr<ByteStream> ByteStream::create(asio::ip::tcp::socket socket, Marks marks) {
  return std::make_shared<ByteStream>(std::move(socket), marks);
}

ByteStream::ByteStream(asio::ip::tcp::socket socket, Marks marks) : socket_(std::move(socket)), marks_(marks) {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
}

void ByteStream::read(bool on) {
  reading_on_ = on;
  if (on) wait_readable();
}

void ByteStream::wait_readable() {
  if (!reading_on_ || waiting_ || eof_ || failed_ || closed_) return;
  waiting_ = true;
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->waiting_ = false;
                       if (self->closed_) return;
                       if (ec) {
                         if (ec == asio::error::operation_aborted) return;
                         self->failed_ = true;
                         if (self->handlers_.error) self->handlers_.error(ec);
                         return;
                       }
                       self->on_readable();
                     });
}

void ByteStream::on_readable() {
  auto keep = shared_from_this();
  std::span<std::uint8_t> buffer = scratch();
  // Drain what is there (bounded), each piece straight to the owner.
  for (int round = 0; round < 4 && reading_on_ && !closed_; ++round) {
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec == asio::error::eof) {
      eof_ = true;
      if (handlers_.eof) handlers_.eof();
      return;
    }
    if (ec) {
      failed_ = true;
      if (handlers_.error) handlers_.error(ec);
      return;
    }
    if (handlers_.data) handlers_.data(std::span<const std::uint8_t>(buffer.data(), n));
    if (n < buffer.size()) break;
  }
  wait_readable();
}

void ByteStream::write(std::vector<std::uint8_t> bytes) {
  if (closed_ || failed_ || shutdown_wanted_ || bytes.empty()) return;
  queued_ += bytes.size();
  queue_.push_back(std::move(bytes));
  if (queued_ > marks_.high) was_high_ = true;
  write_more();
}

void ByteStream::write_more() {
  if (writing_ || closed_ || failed_) return;
  if (queue_.empty()) {
    if (shutdown_wanted_ && !shut_) {
      shut_ = true;
      boost::system::error_code ec;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    }
    return;
  }
  std::vector<asio::const_buffer> buffers;
  writing_count_ = std::min(queue_.size(), kMaxGather);
  buffers.reserve(writing_count_);
  for (std::size_t i = 0; i < writing_count_; ++i) buffers.emplace_back(asio::buffer(queue_[i]));
  writing_ = true;
  asio::async_write(socket_, buffers, [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
    self->writing_ = false;
    if (self->closed_) return;
    for (std::size_t i = 0; i < self->writing_count_ && !self->queue_.empty(); ++i) self->queue_.pop_front();
    self->queued_ -= std::min(self->queued_, n);
    if (ec) {
      self->failed_ = true;
      self->queue_.clear();
      self->queued_ = 0;
      if (self->handlers_.error) self->handlers_.error(ec);
      return;
    }
    if (self->was_high_ && self->queued_ <= self->marks_.low) {
      self->was_high_ = false;
      if (self->handlers_.drained) self->handlers_.drained();
    }
    self->write_more();
  });
}

void ByteStream::shutdown() {
  shutdown_wanted_ = true;
  write_more();
}

void ByteStream::reset() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  socket_.set_option(asio::socket_base::linger(true, 0), ec);
  socket_.close(ec);
  queue_.clear();
  queued_ = 0;
  handlers_ = {};
}

void ByteStream::close() {
  if (closed_) return;
  if (!queue_.empty() || writing_) {
    // Bytes still queued: let them go, then FIN.
    shutdown();
    handlers_ = {};
    reading_on_ = false;
    return;
  }
  closed_ = true;
  boost::system::error_code ec;
  if (!shut_) socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  handlers_ = {};
}

}  // namespace airlock::flow
