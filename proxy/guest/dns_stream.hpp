// DnsStreamFlow: DNS over TCP to the gateway's port 53, answered by the DnsHandler.
//
// Theory of operation. The guest's stream is cut into queries by TcpDnsFramer (2-byte
// length prefix); each query is answered at once by the same DnsHandler that answers UDP
// (Transport::tcp: no 512-byte limit) and the framed response is queued for the guest.
// Nothing leaves the host. Bounded: at most kMaxQueued response bytes wait for the
// guest's window; while over it, no more queries are read (the guest's window closes).
// A framing failure (more than the framer's pending cap) resets the flow. After the
// guest's FIN, the remaining answers are sent and the flow is closed with a FIN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "proxy/dns/dns_handler.hpp"
#include "proxy/dns/tcp_framer.hpp"
#include "proxy/relay/flow_handler.hpp"

namespace airlock::relay {

class DnsStreamFlow : public FlowHandler {
 public:
  static constexpr std::size_t kMaxQueued = 128 * 1024;
  static constexpr std::size_t kReadChunk = 16 * 1024;

  // Keeps a reference to the handler, which must outlive the flow.
  explicit DnsStreamFlow(dns::DnsHandler& handler) : handler_(handler) {}

  void start(GuestFlow& guest) override { guest_ = &guest; }
  void on_readable() override;
  void on_writable() override;
  void on_read_closed() override { on_readable(); }
  void on_closed(Close) override { guest_ = nullptr; }

 private:
  void flush();

  dns::DnsHandler& handler_;
  dns::TcpDnsFramer framer_;
  GuestFlow* guest_ = nullptr;
  std::vector<std::uint8_t> queued_;
  std::size_t queued_offset_ = 0;
  bool input_done_ = false;  // the guest sent FIN and every byte before it was read
  bool fin_sent_ = false;
};

}  // namespace airlock::relay
