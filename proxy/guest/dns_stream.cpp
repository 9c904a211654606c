// DNS over TCP at the gateway; see dns_stream.hpp for the theory of operation.
#include "proxy/guest/dns_stream.hpp"

#include <chrono>
#include <span>

namespace airlock::guest {

DnsStreamFlow::DnsStreamFlow(dns::DnsHandler& handler, audit::Flow record, Sink sink)
    : handler_(handler), record_(std::move(record)), sink_(std::move(sink)),
      started_(std::chrono::steady_clock::now()) {
  record_.protocol = "dns";
}

void DnsStreamFlow::start(flow::GuestFlow& guest) { guest_ = &guest; }

void DnsStreamFlow::on_closed(Close, const flow::CloseInfo& info) {
  guest_ = nullptr;
  record_.request_bytes = info.bytes_in;
  record_.response_bytes = info.bytes_out;
  record_.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started_).count();
  record_.close_reason = info.reason == "aborted" ? "reset_by_proxy" : std::string(info.reason);
  if (sink_) sink_(record_);
}

void DnsStreamFlow::on_readable() {
  while (guest_ != nullptr && queued_.size() - queued_offset_ < kMaxQueued) {
    std::vector<std::uint8_t> bytes = guest_->read(kReadChunk);
    if (bytes.empty()) {
      input_done_ = guest_->read_closed();
      break;
    }
    if (!framer_.feed(bytes)) {
      record_.detail = "bad DNS-over-TCP framing";
      guest_->abort();
      return;
    }
    while (auto query = framer_.next()) {
      auto response = handler_.answer(*query, dns::Clock::now(), dns::Transport::tcp);
      if (!response) continue;
      if (auto framed = dns::TcpDnsFramer::encode(*response))
        queued_.insert(queued_.end(), framed->begin(), framed->end());
    }
  }
  flush();
}

void DnsStreamFlow::on_writable() {
  flush();
  on_readable();
}

void DnsStreamFlow::flush() {
  if (guest_ == nullptr) return;
  while (queued_offset_ < queued_.size()) {
    const std::size_t taken =
        guest_->send(std::span<const std::uint8_t>(queued_).subspan(queued_offset_));
    if (taken == 0) return;
    queued_offset_ += taken;
  }
  queued_.clear();
  queued_offset_ = 0;
  if (input_done_ && !fin_sent_) {
    fin_sent_ = true;
    guest_->shutdown_write();
  }
}

}  // namespace airlock::guest
