// The MITM's I/O driver for one flow; see mitm_flow.hpp.
#include "proxy/relay/mitm_flow.hpp"
#include "proxy/relay/relay_flow.hpp"

#include <span>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>

namespace airlock::relay {

MitmFlow::MitmFlow(asio::io_context& io, std::shared_ptr<mitm::MitmContext> context,
                   mitm::FlowTarget target, bool opaque_allowed, asio::ip::tcp::socket upstream,
                   Emit emit)
    : io_(io),
      session_(std::move(context), target, opaque_allowed, mitm::Clock::now()),
      socket_(std::move(upstream)),
      timer_(io),
      emit_(std::move(emit)),
      read_buffer_(kUpstreamRead),
      target_(std::move(target)) {}

void MitmFlow::start(GuestFlow& guest) {
  guest_ = &guest;
  boost::system::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  pump();
}

void MitmFlow::on_closed(Close how) {
  guest_ = nullptr;
  timer_.cancel();
  session_.on_closed(mitm::Clock::now());
  for (auto& events = session_.events(); !events.empty(); events.pop_front())
    if (emit_) emit_(std::move(events.front()));
  if (report_close_ && emit_) {
    emit_({{"kind", "flow"},
           {"protocol", std::string(session_.protocol())},
           {"host", target_.host.to_string()},
           {"port", target_.port},
           {"request_bytes", from_guest_},
           {"response_bytes", to_guest_total_},
           {"duration_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                               mitm::Clock::now() - started_).count()},
           {"blocked", false},
           {"rule", target_.rule},
           {"close_reason", how == Close::graceful ? "closed" : "reset"}});
  }
  if (how == Close::abortive) {
    close_upstream(true);
  } else if (writing_ || !to_upstream_.empty()) {
    close_after_write_ = true;
    write_upstream();
  } else {
    close_upstream(false);
  }
}

void MitmFlow::pump() {
  if (pumping_ || guest_ == nullptr) return;
  auto keep = shared_from_this();  // a guest call below may end the flow (on_closed)
  pumping_ = true;
  for (int round = 0; round < 64 && guest_ != nullptr; ++round) {
    bool progress = false;
    // Guest bytes into the session, while there is room downstream of it.
    while (!guest_eof_seen_ && session_.wants_guest_data() && to_upstream_bytes_ < kHighWater &&
           to_guest_.size() - to_guest_offset_ < kHighWater) {
      std::vector<std::uint8_t> data = guest_->read(kChunk);
      if (data.empty()) {
        if (guest_->read_closed()) {
          guest_eof_seen_ = true;
          session_.on_guest_eof(mitm::Clock::now());
          progress = true;
        }
        break;
      }
      from_guest_ += data.size();
      session_.on_guest(data, mitm::Clock::now());
      progress = true;
    }
    // Session output to both sides.
    if (auto up = session_.take_to_upstream(); !up.empty()) {
      to_upstream_bytes_ += up.size();
      to_upstream_.push_back(std::move(up));
      progress = true;
    }
    if (auto down = session_.take_to_guest(); !down.empty()) {
      if (to_guest_offset_ == to_guest_.size()) {
        to_guest_ = std::move(down);
        to_guest_offset_ = 0;
      } else {
        to_guest_.insert(to_guest_.end(), down.begin(), down.end());
      }
    }
    while (to_guest_offset_ < to_guest_.size() && !guest_reset_) {
      const std::size_t taken =
          guest_->send(std::span<const std::uint8_t>(to_guest_).subspan(to_guest_offset_));
      if (taken == 0) break;
      to_guest_offset_ += taken;
      to_guest_total_ += taken;
      progress = true;
    }
    if (to_guest_offset_ == to_guest_.size()) {
      to_guest_.clear();
      to_guest_offset_ = 0;
    }
    auto& events = session_.events();
    while (!events.empty()) {
      if (emit_) emit_(std::move(events.front()));
      events.pop_front();
    }
    if (!progress) break;
  }
  if (guest_ == nullptr) {
    pumping_ = false;
    return;
  }
  // Closes.
  const mitm::CloseHow guest_close = session_.guest_close();
  if (guest_close == mitm::CloseHow::reset && !guest_reset_) {
    guest_reset_ = true;
    GuestFlow* guest = guest_;
    pumping_ = false;
    guest->abort();  // on_closed follows through the engine
    close_upstream(true);
    return;
  }
  if (guest_close == mitm::CloseHow::graceful && !guest_fin_sent_ && to_guest_.empty()) {
    guest_fin_sent_ = true;
    guest_->shutdown_write();
  }
  write_upstream();
  read_upstream();
  arm_timer();
  pumping_ = false;
}

void MitmFlow::arm_timer() {
  const auto deadline = session_.next_deadline();
  if (!deadline) {
    if (timer_at_) timer_.cancel();
    timer_at_.reset();
    return;
  }
  if (timer_at_ && *timer_at_ == *deadline) return;
  timer_at_ = deadline;
  timer_.expires_at(*deadline);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->guest_ == nullptr) return;
    self->timer_at_.reset();
    self->session_.on_timer(mitm::Clock::now());
    self->pump();
  });
}

void MitmFlow::read_upstream() {
  if (upstream_closed_ || guest_ == nullptr || reading_ || upstream_eof_) return;
  if (to_guest_.size() - to_guest_offset_ >= kHighWater || guest_->congested()) return;
  reading_ = true;
  socket_.async_read_some(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        self->reading_ = false;
        if (self->upstream_closed_ || self->guest_ == nullptr) return;
        if (ec == asio::error::eof) {
          self->upstream_eof_ = true;
          self->session_.on_upstream_eof(mitm::Clock::now());
        } else if (ec) {
          self->upstream_eof_ = true;
          self->session_.on_upstream_error(ec.message(), mitm::Clock::now());
        } else {
          self->session_.on_upstream(std::span<const std::uint8_t>(self->read_buffer_.data(), n),
                                     mitm::Clock::now());
        }
        self->pump();
      });
}

void MitmFlow::write_upstream() {
  if (upstream_closed_ || writing_) return;
  if (to_upstream_.empty()) {
    const mitm::CloseHow how = session_.upstream_close();
    if (close_after_write_ || how == mitm::CloseHow::reset) {
      close_upstream(how == mitm::CloseHow::reset);
    } else if (how == mitm::CloseHow::graceful && !upstream_shut_) {
      upstream_shut_ = true;
      boost::system::error_code ec;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    }
    return;
  }
  if (session_.upstream_close() == mitm::CloseHow::reset) {
    close_upstream(true);
    return;
  }
  writing_ = true;
  writing_buffer_ = std::move(to_upstream_.front());
  to_upstream_.pop_front();
  asio::async_write(
      socket_, asio::buffer(writing_buffer_),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        self->writing_ = false;
        self->to_upstream_bytes_ -= std::min(self->to_upstream_bytes_, self->writing_buffer_.size());
        (void)n;
        if (self->upstream_closed_) return;
        if (ec) {
          self->to_upstream_.clear();
          self->to_upstream_bytes_ = 0;
          if (self->guest_ != nullptr) {
            self->session_.on_upstream_error(ec.message(), mitm::Clock::now());
            self->pump();
          } else {
            self->close_upstream(true);
          }
          return;
        }
        if (self->guest_ == nullptr) {
          self->write_upstream();  // closing: flush the rest, then close
          return;
        }
        self->pump();
      });
}

bool rule_names_port(const std::string& rule) {
  // Rules read "allowed_hosts: <pattern>" (policy::Evaluator).
  constexpr std::string_view prefix = "allowed_hosts: ";
  std::string_view text = rule;
  if (text.substr(0, prefix.size()) != prefix) return false;
  text.remove_prefix(prefix.size());
  auto pattern = policy::HostPattern::parse(text);
  return pattern && pattern->port().has_value();
}

HandlerFactory mitm_handler_factory(asio::io_context& io, std::shared_ptr<mitm::MitmContext> context,
                                    EventSink sink) {
  return [&io, context = std::move(context), sink = std::move(sink)](
             const FlowContext& flow, asio::ip::tcp::socket socket) -> std::shared_ptr<FlowHandler> {
    auto host = policy::Host::parse(flow.host);
    if (!host) return nullptr;  // the engine resets the flow
    mitm::FlowTarget target;
    target.host = std::move(*host);
    target.port = flow.port;
    target.rule = flow.rule;
    return std::make_shared<MitmFlow>(io, context, std::move(target), rule_names_port(flow.rule),
                                      std::move(socket), [sink](nlohmann::json data) {
                                        if (sink) sink(AuditEvent{"network", std::move(data)});
                                      });
  };
}

void MitmFlow::close_upstream(bool abortive) {
  if (upstream_closed_) return;
  upstream_closed_ = true;
  close_upstream_socket(socket_, abortive, upstream_shut_);
}

}  // namespace airlock::relay
