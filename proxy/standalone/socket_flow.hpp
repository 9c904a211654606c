// SocketGuestFlow: the GuestFlow interface over a client's TCP socket, so the same
// FlowDriver that serves a VM's flows serves a client of the standalone proxy.
//
// Reads run ahead into a bounded buffer (kMaxBuffered; reading pauses when full), sends
// go to the ByteStream's queue and report "full" above kMaxQueued, with on_writable()
// once it drained. shutdown_write() sends FIN after the queue; abort() sends RST. The
// handler's on_closed runs once: graceful after both directions ended, abortive on any
// error or abort(), with the bytes each way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "proxy/flow/flow_handler.hpp"
#include "proxy/flow/stream.hpp"

namespace airlock::standalone {

class SocketGuestFlow final : public flow::GuestFlow, public std::enable_shared_from_this<SocketGuestFlow> {
 public:
  static constexpr std::size_t kMaxBuffered = 256 * 1024;
  static constexpr std::size_t kMaxQueued = 1u << 20;

  // `already_read`: bytes read off the socket before the handoff (after a CONNECT head).
  SocketGuestFlow(std::shared_ptr<flow::ByteStream> stream, std::vector<std::uint8_t> already_read);

  void start(std::shared_ptr<flow::FlowHandler> handler);

  std::vector<std::uint8_t> read(std::size_t max) override;
  std::size_t send(std::span<const std::uint8_t> bytes) override;
  void shutdown_write() override;
  void abort() override;
  bool congested() const override { return stream_->queued() > kMaxQueued; }
  bool read_closed() const override { return eof_ && buffer_.empty(); }

 private:
  void finish(flow::FlowHandler::Close how, std::string_view reason);
  void maybe_finish();
  void update_reading();

  std::shared_ptr<flow::ByteStream> stream_;
  std::shared_ptr<flow::FlowHandler> handler_;
  std::shared_ptr<SocketGuestFlow> self_;  // alive until finish()
  std::vector<std::uint8_t> buffer_;
  bool eof_ = false;
  bool fin_sent_ = false;
  bool was_full_ = false;
  bool done_ = false;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
};

}  // namespace airlock::standalone
