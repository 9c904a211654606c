// DnsStreamFlow: DNS over TCP to the gateway's port 53, answered by the DnsHandler.
//
// Theory of operation. The guest's stream is cut into queries by TcpDnsFramer (2-byte
// length prefix); each query is answered at once by the same DnsHandler that answers UDP
// (Transport::tcp: no 512-byte limit) and the framed response is queued for the guest.
// Nothing leaves the host. Bounded: at most kMaxQueued response bytes wait for the
// guest's window; while over it, no more queries are read (the guest's window closes).
// A framing failure (more than the framer's pending cap) resets the flow. After the
// guest's FIN, the remaining answers are sent and the flow is closed with a FIN. Its
// queries are recorded as dns events; the connection itself gets its flow record
// (protocol dns) when it closes, like every other.
#pragma once

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "proxy/dns/dns_handler.hpp"
#include "proxy/dns/tcp_framer.hpp"
#include "audit/events.hpp"
#include "proxy/flow/flow_handler.hpp"

namespace airlock::guest {

class DnsStreamFlow : public flow::FlowHandler {
 public:
  static constexpr std::size_t kMaxQueued = 128 * 1024;
  static constexpr std::size_t kReadChunk = 16 * 1024;

  using Sink = std::function<void(audit::Event)>;

  // Keeps a reference to the handler, which must outlive the flow; `record` is the flow's
  // closing record so far (host, port).
  DnsStreamFlow(dns::DnsHandler& handler, audit::Flow record, Sink sink);

  void start(flow::GuestFlow& guest) override;
  void on_readable() override;
  void on_writable() override;
  void on_read_closed() override { on_readable(); }
  void on_closed(Close how, const flow::CloseInfo& info) override;

 private:
  void flush();

  dns::DnsHandler& handler_;
  audit::Flow record_;
  Sink sink_;
  std::chrono::steady_clock::time_point started_;
  dns::TcpDnsFramer framer_;
  flow::GuestFlow* guest_ = nullptr;
  std::vector<std::uint8_t> queued_;
  std::size_t queued_offset_ = 0;
  bool input_done_ = false;  // the guest sent FIN and every byte before it was read
  bool fin_sent_ = false;
};

}  // namespace airlock::guest
