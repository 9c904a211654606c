// TCP terminator - theory of operation.
//
// Every TCP connection the guest opens ends here, whatever its destination: the stack
// answers as if it were that host (segments to the guest carry the original destination
// IP and port as their source), and the connection's byte streams become a flow for the
// layer above, keyed by {guest port, destination IP, destination port}.
//
// Opening. A SYN for an unknown key creates a flow in `pending` and emits
// FlowRequested; nothing is sent until the layer above calls accept() (SYN-ACK with our
// MSS = mtu - 40 and a window scale if the guest offered one) or reject() (RST). The
// guest's retransmitted SYNs are absorbed meanwhile; a flow left pending longer than
// `pending_timeout` is reset. Caps on live flows, pending (half-open) flows and buffered
// bytes are checked on every new SYN; over a cap the SYN gets an RST.
//
// The link is a lossless, in-order Unix socket, so this is deliberately simple, like
// passt: no congestion control, no SACK, no reassembly queue. A segment that is not the
// next one expected is dropped and answered with a duplicate ACK; overlap with bytes
// already received is trimmed. Every data segment is acknowledged at once (no delayed
// ACK).
//
// Guest -> host. Payload lands in a bounded per-flow receive buffer; the advertised
// window is its free space (scaled), so the guest can never overrun it. read() drains
// it, and when that opens the window by at least min(MSS, buffer / 2) a window update
// goes out. FlowReadable fires when the buffer goes from empty to non-empty.
//
// Host -> guest. send() copies into a bounded send buffer (returns how much it took;
// FlowWritable fires when space frees after a short write). The buffer is cut into
// segments of at most the guest's MSS and sent as far as the guest's window allows. A
// zero window arms a persist timer: probes (an ACK one below snd_nxt, which the guest
// must answer with its current window) back off exponentially, and a window stuck at
// zero for `zero_window_timeout` resets the flow. Unacknowledged data is retransmitted
// go-back-N on a timeout that doubles per retry up to `max_rto`; after
// `max_retransmits` the flow is reset. On this link that only happens if the guest
// stalls.
//
// Closing. A guest FIN emits FlowReadClosed (read() still drains the buffer);
// shutdown_write() sends our FIN once the send buffer is drained. When both FINs are
// acknowledged and the receive buffer is empty, FlowClosed{closed} is emitted and the
// flow waits in a short TIME_WAIT, answering retransmitted FINs, before it is freed. A
// guest RST emits FlowReset then FlowClosed{reset_by_guest}; abort() sends RST. Idle
// flows are reset after `idle_timeout`. FlowClosed is always a flow's last event.
//
// Sequence numbers come from a generator seeded by config.isn_seed, so tests and
// fuzzing reproduce exactly. Limits: IPv4 only, no urgent data (URG is ignored), no
// timestamps/SACK (the options are skipped), no simultaneous open.
#include "proxy/netstack/tcp.hpp"

#include <algorithm>

namespace airlock::netstack {
namespace {

constexpr std::uint16_t kDefaultGuestMss = 536;  // RFC 1122, when the SYN has no MSS
constexpr std::uint8_t kMaxWindowScale = 14;

std::uint8_t window_scale_for(std::size_t buffer) {
  std::uint8_t shift = 0;
  while (shift < kMaxWindowScale && (buffer >> shift) > 0xffff) ++shift;
  return shift;
}

}  // namespace

std::string_view to_string(TcpState state) {
  switch (state) {
    case TcpState::pending: return "pending";
    case TcpState::syn_received: return "syn_received";
    case TcpState::established: return "established";
    case TcpState::time_wait: return "time_wait";
  }
  return "unknown";
}

TcpTerminator::TcpTerminator(LinkContext& ctx) : ctx_(ctx), isn_state_(ctx.config.isn_seed) {}

std::uint32_t TcpTerminator::next_isn() {
  // splitmix64: reproducible from the seed, well spread between consecutive flows.
  std::uint64_t z = (isn_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return static_cast<std::uint32_t>((z ^ (z >> 31)) & 0xffffffffU);
}

std::uint16_t TcpTerminator::our_mss() const {
  return static_cast<std::uint16_t>(std::clamp(ctx_.config.mtu, kMinMtu, kMaxMtu) - 40U);
}

TcpTerminator::Tcb* TcpTerminator::find(FlowId id) {
  auto it = flows_.find(id);
  return it == flows_.end() ? nullptr : &it->second;
}

const TcpTerminator::Tcb* TcpTerminator::find(FlowId id) const {
  auto it = flows_.find(id);
  return it == flows_.end() ? nullptr : &it->second;
}

std::size_t TcpTerminator::pending_count() const {
  return static_cast<std::size_t>(std::count_if(flows_.begin(), flows_.end(), [](const auto& f) {
    return f.second.state == TcpState::pending || f.second.state == TcpState::syn_received;
  }));
}

// --- output ----------------------------------------------------------------------------

void TcpTerminator::send_segment(const Tcb& tcb, std::uint32_t seq, std::uint8_t flags,
                                 std::span<const std::uint8_t> payload, bool syn_options) {
  TcpSegment seg;
  seg.src_port = tcb.key.dst_port;
  seg.dst_port = tcb.key.guest_port;
  seg.seq = seq;
  seg.ack = (flags & tcp_flag::ack) ? tcb.rcv_nxt : 0;
  seg.flags = flags;
  if (syn_options) {
    seg.mss = our_mss();
    if (tcb.rcv_wscale > 0 || tcb.snd_wscale > 0) seg.window_scale = tcb.rcv_wscale;
  }
  // The SYN-ACK's window is never scaled (RFC 7323); later ones are.
  const std::size_t space = receive_space(tcb);
  seg.window = syn_options ? static_cast<std::uint16_t>(std::min<std::size_t>(space, 0xffff))
                           : static_cast<std::uint16_t>(std::min<std::size_t>(space >> tcb.rcv_wscale, 0xffff));
  std::vector<std::uint8_t> frame;
  build_tcp_frame(frame, ctx_.route_to_guest(tcb.key.dst_ip), seg, payload);
  if (flags & tcp_flag::rst) ++ctx_.counters.tcp_rst_sent;
  ctx_.emit(std::move(frame));
}

std::size_t TcpTerminator::receive_space(const Tcb& tcb) const {
  const std::size_t per_flow = ctx_.config.receive_buffer - std::min(ctx_.config.receive_buffer, tcb.rx.size());
  const std::size_t global = ctx_.config.max_buffered_bytes - std::min(ctx_.config.max_buffered_bytes, buffered_);
  return tcb.guest_fin ? 0 : std::min(per_flow, global);
}

std::uint16_t TcpTerminator::advertise_window(Tcb& tcb) {
  const std::size_t window = std::min<std::size_t>(receive_space(tcb) >> tcb.rcv_wscale, 0xffff);
  const std::uint32_t edge = tcb.rcv_nxt + static_cast<std::uint32_t>(window << tcb.rcv_wscale);
  if (seq_gt(edge, tcb.rcv_adv_edge)) tcb.rcv_adv_edge = edge;
  return static_cast<std::uint16_t>(window);
}

void TcpTerminator::send_ack(Tcb& tcb) {
  advertise_window(tcb);
  send_segment(tcb, tcb.snd_nxt, tcp_flag::ack);
}

void TcpTerminator::send_reset_for(const Ipv4View& packet, const TcpView& seg) {
  if (seg.has(tcp_flag::rst)) return;  // never answer a reset with a reset
  TcpSegment out;
  out.src_port = seg.dst_port;
  out.dst_port = seg.src_port;
  if (seg.has(tcp_flag::ack)) {
    out.seq = seg.ack;
    out.flags = tcp_flag::rst;
  } else {
    const auto length = static_cast<std::uint32_t>(seg.payload.size()) + (seg.has(tcp_flag::syn) ? 1U : 0U) +
                        (seg.has(tcp_flag::fin) ? 1U : 0U);
    out.ack = seg.seq + length;
    out.flags = tcp_flag::rst | tcp_flag::ack;
  }
  std::vector<std::uint8_t> frame;
  build_tcp_frame(frame, ctx_.route_to_guest(packet.dst), out, {});
  ++ctx_.counters.tcp_rst_sent;
  ctx_.emit(std::move(frame));
}

void TcpTerminator::flush(Tcb& tcb, TimePoint now) {
  if (tcb.state != TcpState::established) return;
  for (;;) {
    const std::uint32_t in_flight = tcb.snd_nxt - tcb.snd_una;  // FIN not sent yet here
    if (tcb.fin_sent || in_flight >= tcb.tx.size()) break;
    const std::size_t unsent = tcb.tx.size() - in_flight;
    if (tcb.snd_wnd <= in_flight) break;
    const std::size_t n = std::min({unsent, std::size_t{tcb.snd_mss}, std::size_t{tcb.snd_wnd - in_flight}});
    const std::uint8_t flags = tcp_flag::ack | (n == unsent ? tcp_flag::psh : 0);
    advertise_window(tcb);
    send_segment(tcb, tcb.snd_nxt, flags, tcb.tx.peek(in_flight, n));
    tcb.snd_nxt += static_cast<std::uint32_t>(n);
    if (seq_gt(tcb.snd_nxt, tcb.snd_max)) tcb.snd_max = tcb.snd_nxt;
    if (!tcb.rto_deadline) tcb.rto_deadline = now + tcb.rto;
  }
  const std::uint32_t in_flight = tcb.snd_nxt - tcb.snd_una - (tcb.fin_sent ? 1U : 0U);
  if (tcb.fin_queued && !tcb.fin_sent && in_flight == tcb.tx.size()) {
    advertise_window(tcb);
    send_segment(tcb, tcb.snd_nxt, tcp_flag::fin | tcp_flag::ack);
    tcb.fin_sent = true;
    tcb.snd_nxt += 1;
    if (seq_gt(tcb.snd_nxt, tcb.snd_max)) tcb.snd_max = tcb.snd_nxt;
    if (!tcb.rto_deadline) tcb.rto_deadline = now + tcb.rto;
  }
  // Persist: data waits, nothing is in flight to elicit an ACK, and the window is shut.
  const bool stuck = tcb.snd_wnd == 0 && !tcb.fin_sent && in_flight == 0 && !tcb.tx.empty();
  if (stuck) {
    if (!tcb.persist_deadline) {
      tcb.persist_backoff = ctx_.config.persist_interval;
      tcb.persist_deadline = now + tcb.persist_backoff;
    }
    if (!tcb.zero_window_since) tcb.zero_window_since = now;
  } else {
    tcb.persist_deadline.reset();
    if (tcb.snd_wnd > 0) tcb.zero_window_since.reset();
  }
}

// --- input -----------------------------------------------------------------------------

void TcpTerminator::on_segment(const Ipv4View& packet, TimePoint now) {
  ParseError why = ParseError::none;
  const auto seg = TcpView::parse(packet.payload, packet.src, packet.dst, &why);
  if (!seg) {
    ++(why == ParseError::bad_checksum ? ctx_.counters.dropped_bad_checksum
       : why == ParseError::truncated  ? ctx_.counters.dropped_truncated
                                       : ctx_.counters.dropped_malformed);
    return;
  }
  if (seg->src_port == 0 || seg->dst_port == 0) {
    ++ctx_.counters.dropped_malformed;
    return;
  }
  const FlowKey key{seg->src_port, packet.dst, seg->dst_port};
  auto it = by_key_.find(key);
  if (it != by_key_.end()) {
    Tcb& tcb = flows_.at(it->second);
    if (tcb.state == TcpState::time_wait && seg->has(tcp_flag::syn) && !seg->has(tcp_flag::ack) &&
        !seg->has(tcp_flag::rst) && !seg->has(tcp_flag::fin)) {
      erase(tcb.id);  // a new connection reusing the port: TIME_WAIT gives way
      it = by_key_.end();
    } else {
      if (seg->has(tcp_flag::rst)) return on_guest_rst(tcb, *seg);
      if (tcb.state != TcpState::time_wait) tcb.last_activity = now;
      switch (tcb.state) {
        case TcpState::pending:
          if (seg->has(tcp_flag::syn) && !seg->has(tcp_flag::ack)) {
            ++ctx_.counters.tcp_duplicate_syns;
          } else {
            ++ctx_.counters.dropped_tcp_bad_flags;
          }
          return;
        case TcpState::syn_received: return on_syn_received(tcb, *seg, now);
        case TcpState::established: return on_established(tcb, *seg, now);
        case TcpState::time_wait:
          if (seg->has(tcp_flag::fin)) send_ack(tcb);  // our ACK of their FIN was lost
          return;
      }
      return;
    }
  }
  // No flow: only a bare SYN opens one; anything else is answered with RST.
  const std::uint8_t f = seg->flags;
  if ((f & (tcp_flag::syn | tcp_flag::ack | tcp_flag::rst | tcp_flag::fin)) == tcp_flag::syn) {
    return on_new_syn(key, *seg, now);
  }
  ++ctx_.counters.dropped_tcp_no_flow;
  send_reset_for(packet, *seg);
}

void TcpTerminator::on_new_syn(const FlowKey& key, const TcpView& seg, TimePoint now) {
  auto refuse = [&](std::uint64_t& counter, std::string_view reason) {
    ++counter;
    Tcb probe;  // just enough state to address the RST
    probe.key = key;
    probe.rcv_nxt = seg.seq + 1;
    send_segment(probe, 0, tcp_flag::rst | tcp_flag::ack);
    ctx_.events.push_back(FlowRefused{key, reason});
  };
  if (flows_.size() >= ctx_.config.max_flows) return refuse(ctx_.counters.dropped_tcp_flow_cap, "flow_cap");
  if (pending_count() >= ctx_.config.max_pending_flows)
    return refuse(ctx_.counters.dropped_tcp_pending_cap, "pending_cap");
  if (buffered_ >= ctx_.config.max_buffered_bytes) return refuse(ctx_.counters.dropped_tcp_buffer_cap, "buffer_cap");
  const FlowId id = next_id_++;
  Tcb& tcb = flows_[id];
  tcb.id = id;
  tcb.key = key;
  tcb.irs = seg.seq;
  tcb.rcv_nxt = seg.seq + 1;
  tcb.rcv_adv_edge = tcb.rcv_nxt;
  tcb.snd_mss = std::max<std::uint16_t>(64, std::min(seg.mss.value_or(kDefaultGuestMss), our_mss()));
  if (seg.window_scale) {
    tcb.snd_wscale = *seg.window_scale;
    tcb.rcv_wscale = window_scale_for(ctx_.config.receive_buffer);
  }
  tcb.snd_wnd = seg.window;  // a SYN's window is never scaled
  tcb.snd_wl1 = seg.seq;
  tcb.rto = ctx_.config.initial_rto;
  tcb.last_activity = now;
  tcb.pending_deadline = now + ctx_.config.pending_timeout;
  by_key_[key] = id;
  ++ctx_.counters.tcp_flows_requested;
  ctx_.events.push_back(FlowRequested{id, key});
}

void TcpTerminator::on_syn_received(Tcb& tcb, const TcpView& seg, TimePoint now) {
  if (seg.has(tcp_flag::syn)) {
    // The guest retransmitted its SYN: our SYN-ACK is on its way or lost; resend it.
    ++ctx_.counters.tcp_duplicate_syns;
    send_segment(tcb, tcb.iss, tcp_flag::syn | tcp_flag::ack, {}, true);
    return;
  }
  if (!seg.has(tcp_flag::ack)) {
    ++ctx_.counters.dropped_tcp_bad_flags;
    return;
  }
  if (seg.ack != tcb.iss + 1) {
    ++ctx_.counters.dropped_tcp_bad_flags;
    TcpSegment out;  // RFC 793: an unacceptable ACK in SYN-RECEIVED gets <SEQ=SEG.ACK><RST>
    out.src_port = tcb.key.dst_port;
    out.dst_port = tcb.key.guest_port;
    out.seq = seg.ack;
    out.flags = tcp_flag::rst;
    std::vector<std::uint8_t> frame;
    build_tcp_frame(frame, ctx_.route_to_guest(tcb.key.dst_ip), out, {});
    ++ctx_.counters.tcp_rst_sent;
    ctx_.emit(std::move(frame));
    return;
  }
  tcb.state = TcpState::established;
  tcb.snd_una = tcb.iss + 1;
  tcb.snd_wnd = static_cast<std::uint32_t>(seg.window) << tcb.snd_wscale;
  tcb.snd_wl1 = seg.seq;
  tcb.snd_wl2 = seg.ack;
  tcb.rto_deadline.reset();
  tcb.retries = 0;
  tcb.rto = ctx_.config.initial_rto;
  on_established(tcb, seg, now);
}

void TcpTerminator::on_guest_rst(Tcb& tcb, const TcpView& seg) {
  if (tcb.state == TcpState::time_wait) {
    erase(tcb.id);
    return;
  }
  // Accept a reset only inside the window (RFC 793/5961), so a stray one can't kill a flow.
  const std::uint32_t window = std::max<std::uint32_t>(tcb.rcv_adv_edge - tcb.rcv_nxt, 1);
  if (seq_lt(seg.seq, tcb.rcv_nxt) || !seq_lt(seg.seq, tcb.rcv_nxt + window)) {
    ++ctx_.counters.dropped_tcp_out_of_window;
    return;
  }
  ++ctx_.counters.tcp_rst_received;
  ctx_.events.push_back(FlowReset{tcb.id});
  close_flow(tcb, "reset_by_guest", false);
}

void TcpTerminator::on_established(Tcb& tcb, const TcpView& seg, TimePoint now) {
  if (seg.has(tcp_flag::syn)) {
    // A retransmitted SYN (our SYN-ACK's ACK was lost) or a bogus one: the ACK we send
    // tells the guest where we are (RFC 5961 challenge ACK).
    ++ctx_.counters.tcp_duplicate_syns;
    send_ack(tcb);
    return;
  }
  if (!seg.has(tcp_flag::ack)) {
    ++ctx_.counters.dropped_tcp_bad_flags;
    return;
  }
  if (seq_gt(seg.ack, tcb.snd_max)) {
    // Acknowledges something we never sent: drop it and tell the guest where we are.
    ++ctx_.counters.dropped_tcp_bad_flags;
    send_ack(tcb);
    return;
  }
  process_ack(tcb, seg, now);
  receive_payload(tcb, seg);
  flush(tcb, now);
  maybe_finish(tcb, now);
}

void TcpTerminator::process_ack(Tcb& tcb, const TcpView& seg, TimePoint now) {
  if (seq_gt(seg.ack, tcb.snd_una)) {
    const std::uint32_t acked = seg.ack - tcb.snd_una;
    const std::size_t data = std::min<std::size_t>(acked, tcb.tx.size());
    tcb.tx.consume(data);
    buffered_ -= data;
    tcb.bytes_out += data;
    tcb.snd_una = seg.ack;
    if (seq_lt(tcb.snd_nxt, tcb.snd_una)) tcb.snd_nxt = tcb.snd_una;  // after a rewind
    tcb.retries = 0;
    tcb.rto = ctx_.config.initial_rto;
    tcb.rto_deadline.reset();
    if (tcb.snd_una != tcb.snd_max) tcb.rto_deadline = now + tcb.rto;
    if (tcb.want_writable && data > 0 && !tcb.fin_queued) {
      tcb.want_writable = false;
      ctx_.events.push_back(FlowWritable{tcb.id});
    }
  }
  // RFC 793 window update rule: only from a segment at least as new as the last one used.
  if (seq_lt(tcb.snd_wl1, seg.seq) || (tcb.snd_wl1 == seg.seq && seq_le(tcb.snd_wl2, seg.ack))) {
    tcb.snd_wnd = static_cast<std::uint32_t>(seg.window) << tcb.snd_wscale;
    tcb.snd_wl1 = seg.seq;
    tcb.snd_wl2 = seg.ack;
  }
}

void TcpTerminator::receive_payload(Tcb& tcb, const TcpView& seg) {
  std::span<const std::uint8_t> payload = seg.payload;
  bool fin = seg.has(tcp_flag::fin);
  if (payload.empty() && !fin) return;  // a pure ACK
  if (tcb.guest_fin) {
    send_ack(tcb);  // a retransmission of what came before the FIN, or the FIN itself
    return;
  }
  std::uint32_t seq = seg.seq;
  if (seq_lt(seq, tcb.rcv_nxt)) {  // overlaps what we have: trim the old part
    const std::uint32_t old = tcb.rcv_nxt - seq;
    if (old > payload.size() || (old == payload.size() && !fin)) {
      send_ack(tcb);  // entirely a duplicate
      return;
    }
    payload = payload.subspan(old);
    seq = tcb.rcv_nxt;
  }
  if (seq != tcb.rcv_nxt) {
    ++ctx_.counters.dropped_tcp_out_of_order;
    send_ack(tcb);
    return;
  }
  const std::size_t take = std::min(payload.size(), receive_space(tcb));
  if (take < payload.size()) {
    ++(buffered_ >= ctx_.config.max_buffered_bytes ? ctx_.counters.dropped_tcp_buffer_cap
                                                    : ctx_.counters.dropped_tcp_out_of_window);
    fin = false;  // the FIN comes after bytes we did not take
  }
  if (take > 0) {
    const bool was_empty = tcb.rx.empty();
    tcb.rx.append(payload.first(take));
    buffered_ += take;
    tcb.bytes_in += take;
    tcb.rcv_nxt += static_cast<std::uint32_t>(take);
    if (was_empty) ctx_.events.push_back(FlowReadable{tcb.id});
  }
  if (fin) {
    tcb.rcv_nxt += 1;
    tcb.guest_fin = true;
    ctx_.events.push_back(FlowReadClosed{tcb.id});
  }
  send_ack(tcb);
}

void TcpTerminator::maybe_finish(Tcb& tcb, TimePoint now) {
  if (tcb.state != TcpState::established || !tcb.guest_fin || !tcb.rx.empty()) return;
  if (!tcb.fin_sent || tcb.snd_una != tcb.snd_max) return;
  tcb.state = TcpState::time_wait;
  tcb.rto_deadline.reset();
  tcb.persist_deadline.reset();
  tcb.pending_deadline.reset();
  tcb.time_wait_deadline = now + ctx_.config.time_wait;
  ++ctx_.counters.tcp_flows_closed;
  ctx_.events.push_back(FlowClosed{tcb.id, tcb.bytes_in, tcb.bytes_out, "closed"});
}

void TcpTerminator::close_flow(Tcb& tcb, std::string_view reason, bool send_rst) {
  if (send_rst) {
    if (tcb.state == TcpState::pending) {
      send_segment(tcb, 0, tcp_flag::rst | tcp_flag::ack);
    } else {
      send_segment(tcb, tcb.snd_nxt, tcp_flag::rst | tcp_flag::ack);
    }
  }
  ++ctx_.counters.tcp_flows_closed;
  ctx_.events.push_back(FlowClosed{tcb.id, tcb.bytes_in, tcb.bytes_out, reason});
  erase(tcb.id);
}

void TcpTerminator::erase(FlowId id) {
  auto it = flows_.find(id);
  if (it == flows_.end()) return;
  buffered_ -= it->second.rx.size() + it->second.tx.size();
  by_key_.erase(it->second.key);
  flows_.erase(it);
}

// --- timers ----------------------------------------------------------------------------

std::optional<TimePoint> TcpTerminator::Tcb::deadline(const Config& config) const {
  if (state == TcpState::time_wait) return time_wait_deadline;
  std::optional<TimePoint> d = last_activity + config.idle_timeout;
  for (const auto& t : {pending_deadline, rto_deadline, persist_deadline}) {
    if (t && *t < *d) d = t;
  }
  return d;
}

std::optional<TimePoint> TcpTerminator::next_deadline() const {
  std::optional<TimePoint> best;
  for (const auto& [id, tcb] : flows_) {
    const auto d = tcb.deadline(ctx_.config);
    if (d && (!best || *d < *best)) best = d;
  }
  return best;
}

void TcpTerminator::on_timer(TimePoint now) {
  std::vector<FlowId> due;
  for (const auto& [id, tcb] : flows_) {
    const auto d = tcb.deadline(ctx_.config);
    if (d && *d <= now) due.push_back(id);
  }
  for (const FlowId id : due) {
    if (Tcb* tcb = find(id)) on_flow_timer(*tcb, now);
  }
}

void TcpTerminator::on_flow_timer(Tcb& tcb, TimePoint now) {
  const Config& config = ctx_.config;
  if (tcb.state == TcpState::time_wait) {
    if (tcb.time_wait_deadline && *tcb.time_wait_deadline <= now) erase(tcb.id);
    return;
  }
  if (tcb.pending_deadline && *tcb.pending_deadline <= now && tcb.state == TcpState::pending) {
    ++ctx_.counters.tcp_timeouts;
    return close_flow(tcb, "pending_timeout", true);
  }
  if (tcb.last_activity + config.idle_timeout <= now) {
    ++ctx_.counters.tcp_timeouts;
    return close_flow(tcb, "idle_timeout", true);
  }
  if (tcb.rto_deadline && *tcb.rto_deadline <= now) {
    tcb.rto_deadline.reset();
    if (++tcb.retries > config.max_retransmits) {
      ++ctx_.counters.tcp_timeouts;
      return close_flow(tcb, "retransmit_timeout", true);
    }
    ++ctx_.counters.tcp_retransmits;
    tcb.rto = std::min(tcb.rto * 2, config.max_rto);
    if (tcb.state == TcpState::syn_received) {
      send_segment(tcb, tcb.iss, tcp_flag::syn | tcp_flag::ack, {}, true);
      tcb.rto_deadline = now + tcb.rto;
    } else {
      tcb.snd_nxt = tcb.snd_una;  // go-back-N from the oldest unacknowledged byte
      tcb.fin_sent = false;
      flush(tcb, now);
    }
  }
  if (tcb.persist_deadline && *tcb.persist_deadline <= now) {
    if (tcb.zero_window_since && *tcb.zero_window_since + config.zero_window_timeout <= now) {
      ++ctx_.counters.tcp_timeouts;
      return close_flow(tcb, "zero_window_timeout", true);
    }
    ++ctx_.counters.tcp_window_probes;
    advertise_window(tcb);
    send_segment(tcb, tcb.snd_nxt - 1, tcp_flag::ack);
    tcb.persist_backoff = std::min(tcb.persist_backoff * 2, config.max_rto);
    tcb.persist_deadline = now + tcb.persist_backoff;
  }
}

// --- the upper layer's calls -------------------------------------------------------------

bool TcpTerminator::accept(FlowId id, TimePoint now) {
  Tcb* tcb = find(id);
  if (tcb == nullptr || tcb->state != TcpState::pending) return false;
  tcb->state = TcpState::syn_received;
  tcb->pending_deadline.reset();
  tcb->iss = next_isn();
  tcb->snd_una = tcb->iss;
  tcb->snd_nxt = tcb->iss + 1;
  tcb->snd_max = tcb->snd_nxt;
  tcb->last_activity = now;
  advertise_window(*tcb);
  send_segment(*tcb, tcb->iss, tcp_flag::syn | tcp_flag::ack, {}, true);
  tcb->rto_deadline = now + tcb->rto;
  ++ctx_.counters.tcp_flows_accepted;
  return true;
}

bool TcpTerminator::reject(FlowId id) {
  Tcb* tcb = find(id);
  if (tcb == nullptr || tcb->state != TcpState::pending) return false;
  ++ctx_.counters.tcp_flows_rejected;
  close_flow(*tcb, "rejected", true);
  return true;
}

std::vector<std::uint8_t> TcpTerminator::read(FlowId id, std::size_t max, TimePoint now) {
  Tcb* tcb = find(id);
  if (tcb == nullptr || tcb->rx.empty()) return {};
  const std::size_t n = std::min(max, tcb->rx.size());
  const auto bytes = tcb->rx.peek(0, n);
  std::vector<std::uint8_t> out(bytes.begin(), bytes.end());
  tcb->rx.consume(n);
  buffered_ -= n;
  tcb->last_activity = now;
  if (tcb->state == TcpState::established && !tcb->guest_fin) {
    // Window update once reading opened the window by a useful amount (no silly windows).
    const std::size_t space = receive_space(*tcb);
    const std::size_t window = std::min<std::size_t>(space >> tcb->rcv_wscale, 0xffff) << tcb->rcv_wscale;
    const std::uint32_t edge = tcb->rcv_nxt + static_cast<std::uint32_t>(window);
    const std::size_t threshold = std::min<std::size_t>(our_mss(), ctx_.config.receive_buffer / 2);
    if (seq_gt(edge, tcb->rcv_adv_edge) && edge - tcb->rcv_adv_edge >= threshold) {
      ++ctx_.counters.tcp_window_updates;
      send_ack(*tcb);
    }
  }
  maybe_finish(*tcb, now);
  return out;
}

std::size_t TcpTerminator::send(FlowId id, std::span<const std::uint8_t> bytes, TimePoint now) {
  Tcb* tcb = find(id);
  if (tcb == nullptr || tcb->fin_queued ||
      (tcb->state != TcpState::syn_received && tcb->state != TcpState::established))
    return 0;
  const std::size_t per_flow = ctx_.config.send_buffer - std::min(ctx_.config.send_buffer, tcb->tx.size());
  const std::size_t global = ctx_.config.max_buffered_bytes - std::min(ctx_.config.max_buffered_bytes, buffered_);
  const std::size_t n = std::min({bytes.size(), per_flow, global});
  if (n < bytes.size()) tcb->want_writable = true;
  if (n == 0) return 0;
  tcb->tx.append(bytes.first(n));
  buffered_ += n;
  tcb->last_activity = now;
  flush(*tcb, now);
  return n;
}

bool TcpTerminator::shutdown_write(FlowId id, TimePoint now) {
  Tcb* tcb = find(id);
  if (tcb == nullptr || (tcb->state != TcpState::syn_received && tcb->state != TcpState::established))
    return false;
  tcb->fin_queued = true;
  tcb->want_writable = false;
  flush(*tcb, now);
  maybe_finish(*tcb, now);
  return true;
}

bool TcpTerminator::abort(FlowId id) {
  Tcb* tcb = find(id);
  if (tcb == nullptr || tcb->state == TcpState::time_wait) return false;
  close_flow(*tcb, "aborted", true);
  return true;
}

std::optional<FlowInfo> TcpTerminator::info(FlowId id) const {
  const Tcb* tcb = find(id);
  if (tcb == nullptr) return std::nullopt;
  FlowInfo info;
  info.key = tcb->key;
  info.state = tcb->state;
  info.readable = tcb->rx.size();
  info.unacked = tcb->tx.size();
  info.guest_window = tcb->snd_wnd;
  info.read_closed = tcb->guest_fin;
  info.write_closed = tcb->fin_queued;
  return info;
}

}  // namespace airlock::netstack
