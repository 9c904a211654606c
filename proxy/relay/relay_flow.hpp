// RelayFlow: an accepted guest flow relayed byte for byte to an upstream TCP socket.
//
// Theory of operation. This is the opaque handler: it neither parses nor changes bytes
// (the TLS/HTTP handlers will take over flows they recognise, behind the same
// FlowHandler interface). Both directions are flow-controlled end to end:
//   - upstream -> guest: one read of at most `chunk` bytes is outstanding, and the next
//     is started only when the guest flow's send buffer took everything read so far and
//     the guest link is not congested. So a slow guest slows the upstream's TCP window
//     instead of filling memory here.
//   - guest -> upstream: bytes are read from the netstack only while no upstream write
//     is in flight, so the guest's window closes when the upstream is slow.
// Half-close passes through both ways: upstream EOF -> FIN to the guest after the
// pending bytes; guest FIN -> shutdown(send) upstream after the pending write. An
// upstream error or RST resets the guest flow; a guest RST (or any abortive end of the
// flow) closes the upstream socket with SO_LINGER 0, which sends RST.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "proxy/relay/flow_handler.hpp"

namespace airlock::relay {

namespace asio = boost::asio;

// Closes an upstream socket: RST (SO_LINGER 0) when abortive, else FIN first unless
// `shut` says it was sent already. Shared by the flow handlers.
void close_upstream_socket(asio::ip::tcp::socket& socket, bool abortive, bool& shut);

class RelayFlow : public FlowHandler, public std::enable_shared_from_this<RelayFlow> {
 public:
  static constexpr std::size_t kDefaultChunk = 64 * 1024;

  explicit RelayFlow(asio::ip::tcp::socket upstream, std::size_t chunk = kDefaultChunk);

  void start(GuestFlow& guest) override;
  void on_readable() override;
  void on_writable() override;
  void on_read_closed() override;
  void on_closed(Close how) override;

  std::uint64_t bytes_to_upstream() const { return to_upstream_; }
  std::uint64_t bytes_to_guest() const { return to_guest_; }

 private:
  void read_upstream();
  void deliver();
  void pump_guest();
  void close_upstream(bool abortive);

  asio::ip::tcp::socket socket_;
  GuestFlow* guest_ = nullptr;  // null once the flow is over
  std::vector<std::uint8_t> read_buffer_;
  std::vector<std::uint8_t> pending_;  // read from upstream, not yet taken by the guest flow
  std::size_t pending_offset_ = 0;
  std::vector<std::uint8_t> write_buffer_;  // to upstream, in flight
  std::size_t chunk_;
  bool reading_ = false;
  bool writing_ = false;
  bool upstream_eof_ = false;
  bool fin_to_guest_ = false;
  bool upstream_shut_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
  std::uint64_t to_upstream_ = 0;
  std::uint64_t to_guest_ = 0;
};

}  // namespace airlock::relay
