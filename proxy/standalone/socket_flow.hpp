// SocketGuestFlow: the GuestFlow interface over an accepted TCP socket, so the same
// handlers that serve guest flows (MitmFlow) serve a client of the explicit proxy.
//
// Reads run ahead into a bounded buffer (kMaxBuffered; reading pauses when full), sends
// queue up to kMaxQueued and report "full" beyond it, with on_writable() once drained.
// shutdown_write() sends FIN after the queue; abort() sends RST. The handler's on_closed
// runs once: graceful after both directions ended, abortive on any error or abort().
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "proxy/relay/flow_handler.hpp"

namespace airlock::relay {

namespace asio = boost::asio;

class SocketGuestFlow final : public GuestFlow, public std::enable_shared_from_this<SocketGuestFlow> {
 public:
  static constexpr std::size_t kMaxBuffered = 256 * 1024;
  static constexpr std::size_t kMaxQueued = 1u << 20;

  // `already_read`: bytes read off the socket before the handoff (after a CONNECT head).
  SocketGuestFlow(asio::ip::tcp::socket socket, std::vector<std::uint8_t> already_read);

  void start(std::shared_ptr<FlowHandler> handler);

  std::vector<std::uint8_t> read(std::size_t max) override;
  std::size_t send(std::span<const std::uint8_t> bytes) override;
  void shutdown_write() override;
  void abort() override;
  bool congested() const override { return queued_ > kMaxQueued; }
  bool read_closed() const override { return eof_ && buffer_.empty(); }

 private:
  void read_more();
  void write_more();
  void finish(FlowHandler::Close how);
  void maybe_finish();

  asio::ip::tcp::socket socket_;
  std::shared_ptr<FlowHandler> handler_;
  std::shared_ptr<SocketGuestFlow> self_;  // alive until finish()
  std::vector<std::uint8_t> buffer_;
  std::vector<std::uint8_t> read_chunk_;
  std::deque<std::vector<std::uint8_t>> queue_;
  std::size_t queued_ = 0;
  std::vector<std::uint8_t> writing_buffer_;
  bool reading_ = false;
  bool writing_ = false;
  bool eof_ = false;
  bool fin_wanted_ = false;
  bool fin_sent_ = false;
  bool was_full_ = false;
  bool done_ = false;
};

}  // namespace airlock::relay
