// FlowDriver: runs one flow's MITM layers (proxy/mitm) on Asio, between a GuestFlow and
// the upstream socket the layers ask for.
//
// Theory of operation. The layers are sans-IO; the driver only moves bytes, time and
// commands:
//   - guest -> layers: GuestFlow::read() while the root layer wants more and the bytes
//     for the upstream are under the high-water mark (else the guest's TCP window closes);
//   - layers -> guest: GuestFlow::send(), what it can't take yet waits here (bounded by
//     the same mark: upstream reads pause above it, and while the guest link is congested);
//   - Open -> an idle pooled connection for the same grant when the layer can use one
//     (Connected{reused}), else one Dial through the Dialer (resolve, IP guard, connect)
//     -> Connected or ConnectFailed; a later Open (the layer re-dials after the origin
//     closed) dials anew; Release -> the connection (and its TLS session) goes to the pool;
//   - upstream <-> layers: a ByteStream (reading paused while the layers or the guest
//     can't keep up);
//   - Close{guest}: FIN once every byte for the guest is out, or RST; Close{upstream}:
//     FIN after the queue (a half-close: the origin's bytes and FIN are still read), or
//     RST;
//   - the layers' deadline -> one steady_timer -> TimerIn; room again toward the guest
//     while a layer has output waiting -> Drained.
// Emit commands go to the audit sink as they come. The driver writes the flow's one
// closing record (audit::Flow) in on_closed, from the layers' Notes, the dial, the
// counts of the connection and how it ended. After on_closed nothing touches the
// GuestFlow; a flow cut short tells the layers (ClosedIn reset), so every request it
// carried is recorded.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "audit/events.hpp"
#include "policy/engine.hpp"
#include "proxy/flow/flow_handler.hpp"
#include "proxy/flow/pool.hpp"
#include "proxy/flow/stream.hpp"
#include "proxy/mitm/context.hpp"
#include "proxy/mitm/layer.hpp"
#include "proxy/upstream/dialer.hpp"

namespace airlock::flow {

using AuditSink = std::function<void(audit::Event)>;

class FlowDriver final : public FlowHandler, public std::enable_shared_from_this<FlowDriver> {
 public:
  static constexpr std::size_t kGuestChunk = 64 * 1024;
  static constexpr std::size_t kHighWater = 1u << 20;
  static constexpr std::size_t kLowWater = 256u << 10;

  struct Counters {
    std::uint64_t dials = 0;
    std::uint64_t upstream_errors = 0;
  };

  // `host` is the destination as the guest named it (for the record).
  // `pool` (may be null) keeps released upstream connections for other flows.
  FlowDriver(asio::io_context& io, std::shared_ptr<mitm::MitmContext> context, policy::Grant grant,
             upstream::Dialer& dialer, UpstreamPool* pool, AuditSink sink);
  ~FlowDriver() override;

  void start(GuestFlow& guest) override;
  void on_readable() override { pump(); }
  void on_writable() override { pump(); }
  void on_read_closed() override { pump(); }
  void on_closed(Close how, const CloseInfo& info) override;

  // For tests: the layers' view (the root).
  const mitm::Layer& root() const { return *root_; }
  const audit::Flow& record() const { return record_; }

 private:
  void run(mitm::Event event);
  void execute(mitm::Commands& commands);
  void pump();
  void push_to_guest();
  void open_upstream(const mitm::Open& open);
  void on_dialled(upstream::DialResult result);
  void adopt(std::shared_ptr<ByteStream> stream);
  std::string pool_key(bool tls) const;
  void close_upstream(bool reset);
  void update_upstream_reading();
  void arm_timer();
  void finish_guest_close();

  asio::io_context& io_;
  std::shared_ptr<mitm::MitmContext> context_;
  policy::Grant grant_;
  upstream::Dialer& dialer_;
  UpstreamPool* pool_;
  AuditSink sink_;
  std::unique_ptr<mitm::Layer> root_;
  GuestFlow* guest_ = nullptr;
  std::deque<std::vector<std::uint8_t>> to_guest_;
  std::size_t to_guest_offset_ = 0;  // into to_guest_.front()
  std::size_t to_guest_bytes_ = 0;
  bool guest_eof_seen_ = false;
  bool guest_close_wanted_ = false;  // graceful: FIN once to_guest_ is out
  bool guest_fin_sent_ = false;
  bool guest_reset_ = false;
  std::shared_ptr<ByteStream> upstream_;
  std::shared_ptr<upstream::Dial> dial_;
  bool upstream_reset_seen_ = false;
  bool upstream_shut_ = false;       // our FIN went (or waits for the queue); still reading
  asio::steady_timer timer_;
  std::optional<mitm::Clock::time_point> timer_at_;
  bool running_ = false;             // inside run(): commands are executed after it
  std::deque<mitm::Event> deferred_;
  bool pumping_ = false;
  bool closed_ = false;
  mitm::Clock::time_point started_;
  audit::Flow record_;
  Counters counters_;
};

}  // namespace airlock::flow
