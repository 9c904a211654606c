// DNS over TCP at the gateway; see dns_stream.hpp for the theory of operation.
#include "proxy/relay/dns_stream.hpp"

#include <chrono>
#include <span>

namespace airlock::relay {

void DnsStreamFlow::on_readable() {
  while (guest_ != nullptr && queued_.size() - queued_offset_ < kMaxQueued) {
    std::vector<std::uint8_t> bytes = guest_->read(kReadChunk);
    if (bytes.empty()) {
      input_done_ = guest_->read_closed();
      break;
    }
    if (!framer_.feed(bytes)) {
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

}  // namespace airlock::relay
