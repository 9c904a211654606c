// MitmFlow: runs one mitm::MitmSession on Asio, between a GuestFlow and an upstream socket.
//
// Theory of operation. The session is sans-IO; this driver only moves bytes and time:
//   - guest -> session: GuestFlow::read() while the session wants data and the upstream
//     write queue is under kHighWater (else the guest's TCP window closes);
//   - session -> upstream: one async_write at a time from a queue;
//   - upstream -> session: one async_read_some outstanding, started only while the bytes
//     for the guest are under kHighWater and the guest link is not congested;
//   - session -> guest: GuestFlow::send(); a short count waits for on_writable().
// Closes follow the session's CloseHow per side: graceful = FIN once that side's bytes
// are out (TLS close_notify is already in them), reset = RST now. The session's events
// go to the sink as "network" events. After on_closed() nothing touches the GuestFlow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "proxy/mitm/session.hpp"
#include "proxy/relay/engine.hpp"
#include "proxy/relay/flow_handler.hpp"

namespace airlock::relay {

namespace asio = boost::asio;

class MitmFlow : public FlowHandler, public std::enable_shared_from_this<MitmFlow> {
 public:
  static constexpr std::size_t kChunk = 64 * 1024;        // guest reads per step
  static constexpr std::size_t kUpstreamRead = 16 * 1024; // one TLS record; an idle flow holds this
  static constexpr std::size_t kHighWater = 1u << 20;
  using Emit = std::function<void(nlohmann::json)>;

  MitmFlow(asio::io_context& io, std::shared_ptr<mitm::MitmContext> context,
           mitm::FlowTarget target, bool opaque_allowed, asio::ip::tcp::socket upstream,
           Emit emit);

  void start(GuestFlow& guest) override;
  void on_readable() override { pump(); }
  void on_writable() override { pump(); }
  void on_read_closed() override { pump(); }
  void on_closed(Close how) override;
  std::string_view protocol() const override { return session_.protocol(); }
  // Emit the flow's close record itself (bytes each way, duration), for drivers without
  // an engine that does it (the explicit proxy).
  void report_close(bool on) { report_close_ = on; }

 private:
  void pump();
  void read_upstream();
  void write_upstream();
  void arm_timer();
  void close_upstream(bool abortive);

  asio::io_context& io_;
  mitm::MitmSession session_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  Emit emit_;
  GuestFlow* guest_ = nullptr;
  std::vector<std::uint8_t> read_buffer_;
  std::vector<std::uint8_t> to_guest_;
  std::size_t to_guest_offset_ = 0;
  std::deque<std::vector<std::uint8_t>> to_upstream_;
  std::size_t to_upstream_bytes_ = 0;
  std::vector<std::uint8_t> writing_buffer_;
  bool pumping_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool upstream_eof_ = false;
  bool upstream_shut_ = false;
  bool upstream_closed_ = false;
  bool guest_eof_seen_ = false;
  bool guest_fin_sent_ = false;
  bool guest_reset_ = false;
  bool close_after_write_ = false;
  std::optional<mitm::Clock::time_point> timer_at_;
  mitm::FlowTarget target_;
  mitm::Clock::time_point started_ = mitm::Clock::now();
  std::uint64_t from_guest_ = 0;
  std::uint64_t to_guest_total_ = 0;
  bool report_close_ = false;
};

// The engine's handler factory that intercepts every dialled flow: opaque bytes pass only
// when the allow rule that let the flow in names its port.
HandlerFactory mitm_handler_factory(asio::io_context& io, std::shared_ptr<mitm::MitmContext> context,
                                    EventSink sink);

// Whether an allow rule ("allowed_hosts: host:port", "allowed_hosts: *.x:443") names a port.
bool rule_names_port(const std::string& rule);

}  // namespace airlock::relay
