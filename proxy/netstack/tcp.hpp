// The TCP terminator: every guest TCP connection ends here, and its bytes are handed to
// the layer above as a flow (see the theory of operation at the top of tcp.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/netstack/context.hpp"
#include "proxy/netstack/flow_table.hpp"
#include "proxy/netstack/views.hpp"

namespace airlock::netstack {

enum class TcpState : std::uint8_t {
  pending,       // SYN seen, FlowRequested emitted, waiting for accept()/reject()
  syn_received,  // SYN-ACK sent, waiting for the guest's ACK
  established,   // data both ways; half-closes are flags on top of this state
  time_wait,     // FlowClosed emitted; only answers retransmitted FINs
};

struct FlowInfo {
  FlowKey key;
  TcpState state = TcpState::pending;
  std::size_t readable = 0;   // bytes waiting in the receive buffer
  std::size_t unacked = 0;    // bytes in the send buffer (unsent or unacknowledged)
  std::uint32_t guest_window = 0;  // the guest's last advertised window, scaled
  bool read_closed = false;   // the guest sent FIN
  bool write_closed = false;  // shutdown_write() was called
};

class TcpTerminator {
 public:
  explicit TcpTerminator(LinkContext& ctx);

  // A validated IPv4 packet carrying TCP from the guest.
  void on_segment(const Ipv4View& packet, TimePoint now);
  void on_timer(TimePoint now);
  std::optional<TimePoint> next_deadline() const;

  bool accept(FlowId id, TimePoint now);
  bool reject(FlowId id);
  std::vector<std::uint8_t> read(FlowId id, std::size_t max, TimePoint now);
  std::size_t send(FlowId id, std::span<const std::uint8_t> bytes, TimePoint now);
  bool shutdown_write(FlowId id, TimePoint now);
  bool abort(FlowId id);

  std::optional<FlowInfo> info(FlowId id) const;
  std::size_t flow_count() const { return flows_.size(); }
  std::size_t buffered_bytes() const { return buffered_; }

 private:
  struct Tcb {
    FlowId id = 0;
    FlowKey key;
    TcpState state = TcpState::pending;
    // Guest -> host.
    std::uint32_t irs = 0;
    std::uint32_t rcv_nxt = 0;
    std::uint32_t rcv_adv_edge = 0;  // rcv_nxt + window as last advertised
    std::uint8_t rcv_wscale = 0;
    bool guest_fin = false;
    ByteQueue rx;
    // Host -> guest. tx holds every byte from snd_una on (unacked, then unsent).
    std::uint32_t iss = 0;
    std::uint32_t snd_una = 0;
    std::uint32_t snd_nxt = 0;
    std::uint32_t snd_max = 0;  // highest sequence sent; snd_nxt rewinds on retransmit
    std::uint32_t snd_wnd = 0;
    std::uint32_t snd_wl1 = 0;
    std::uint32_t snd_wl2 = 0;
    std::uint8_t snd_wscale = 0;
    std::uint16_t snd_mss = 536;
    bool fin_queued = false;
    bool fin_sent = false;
    bool want_writable = false;
    ByteQueue tx;
    // Timers.
    std::optional<TimePoint> pending_deadline;
    std::optional<TimePoint> rto_deadline;
    std::optional<TimePoint> persist_deadline;
    std::optional<TimePoint> zero_window_since;
    std::optional<TimePoint> time_wait_deadline;
    TimePoint last_activity{};
    Duration rto{};
    Duration persist_backoff{};
    unsigned retries = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;

    std::optional<TimePoint> deadline(const Config& config) const;
  };

  Tcb* find(FlowId id);
  const Tcb* find(FlowId id) const;
  void on_new_syn(const FlowKey& key, const TcpView& seg, TimePoint now);
  void on_syn_received(Tcb& tcb, const TcpView& seg, TimePoint now);
  void on_established(Tcb& tcb, const TcpView& seg, TimePoint now);
  void on_guest_rst(Tcb& tcb, const TcpView& seg);
  void receive_payload(Tcb& tcb, const TcpView& seg);
  void process_ack(Tcb& tcb, const TcpView& seg, TimePoint now);
  void flush(Tcb& tcb, TimePoint now);
  void maybe_finish(Tcb& tcb, TimePoint now);
  void on_flow_timer(Tcb& tcb, TimePoint now);

  void send_segment(const Tcb& tcb, std::uint32_t seq, std::uint8_t flags,
                    std::span<const std::uint8_t> payload = {}, bool syn_options = false);
  void send_ack(Tcb& tcb);
  void send_reset_for(const Ipv4View& packet, const TcpView& seg);
  std::uint16_t advertise_window(Tcb& tcb);
  std::size_t receive_space(const Tcb& tcb) const;
  void close_flow(Tcb& tcb, std::string_view reason, bool send_rst);
  void erase(FlowId id);
  std::size_t pending_count() const;
  std::uint32_t next_isn();
  std::uint16_t our_mss() const;

  LinkContext& ctx_;
  std::unordered_map<FlowKey, FlowId, FlowKeyHash> by_key_;
  std::map<FlowId, Tcb> flows_;
  FlowId next_id_ = 1;
  std::uint64_t isn_state_ = 0;
  std::size_t buffered_ = 0;  // rx + tx bytes of all flows, against max_buffered_bytes
};

std::string_view to_string(TcpState state);

}  // namespace airlock::netstack
