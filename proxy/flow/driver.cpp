// One flow's layers on Asio; see driver.hpp for the theory of operation.
#include "proxy/flow/driver.hpp"

#include <utility>

#include "proxy/mitm/flow_layer.hpp"

namespace airlock::flow {

namespace {

std::int64_t millis(mitm::Clock::time_point from, mitm::Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

}  // namespace

FlowDriver::FlowDriver(asio::io_context& io, std::shared_ptr<mitm::MitmContext> context, policy::Grant grant,
                       upstream::Dialer& dialer, UpstreamPool* pool, AuditSink sink)
    : io_(io),
      context_(std::move(context)),
      grant_(std::move(grant)),
      dialer_(dialer),
      pool_(pool),
      sink_(std::move(sink)),
      root_(std::make_unique<mitm::FlowLayer>(context_, grant_)),
      timer_(io),
      started_(mitm::Clock::now()) {
  record_.protocol = "tcp";
  record_.host = grant_.host.to_string();
  record_.port = grant_.port;
  record_.rule = grant_.rule.to_string();
}

FlowDriver::~FlowDriver() {
  if (dial_) dial_->cancel();
  if (upstream_) upstream_->reset();
}

void FlowDriver::start(GuestFlow& guest) {
  guest_ = &guest;
  run(mitm::Start{});
  pump();
}

void FlowDriver::run(mitm::Event event) {
  if (running_) {
    deferred_.push_back(std::move(event));
    return;
  }
  running_ = true;
  mitm::Commands commands;
  root_->handle(std::move(event), mitm::Clock::now(), commands);
  execute(commands);
  running_ = false;
  while (!deferred_.empty()) {
    mitm::Event next = std::move(deferred_.front());
    deferred_.pop_front();
    run(std::move(next));
  }
}

void FlowDriver::execute(mitm::Commands& commands) {
  for (auto& command : commands) {
    if (auto* send = std::get_if<mitm::Send>(&command)) {
      if (send->bytes.empty()) continue;
      if (send->side == mitm::Side::guest) {
        if (guest_ == nullptr || guest_reset_) continue;
        to_guest_bytes_ += send->bytes.size();
        to_guest_.push_back(std::move(send->bytes));
      } else if (upstream_) {
        upstream_->write(std::move(send->bytes));
      }
    } else if (auto* close = std::get_if<mitm::Close>(&command)) {
      if (close->side == mitm::Side::guest) {
        if (close->reset) {
          if (guest_ != nullptr && !guest_reset_) {
            guest_reset_ = true;
            to_guest_.clear();
            to_guest_bytes_ = 0;
            GuestFlow* guest = guest_;
            guest->abort();  // on_closed follows, never inside this call
          }
        } else {
          guest_close_wanted_ = true;
        }
      } else {
        close_upstream(close->reset);
      }
    } else if (auto* open = std::get_if<mitm::Open>(&command)) {
      open_upstream(*open);
    } else if (auto* release = std::get_if<mitm::Release>(&command)) {
      if (upstream_ && !upstream_shut_ && pool_ != nullptr && !closed_) {
        auto stream = std::move(upstream_);
        pool_->put(pool_key(release->tls != nullptr), UpstreamPool::Entry{std::move(stream), release->tls, record_.address});
      } else {
        close_upstream(false);
      }
    } else if (auto* emit = std::get_if<mitm::Emit>(&command)) {
      if (std::holds_alternative<audit::HttpRequest>(emit->event)) ++record_.requests;
      if (sink_) sink_(std::move(emit->event));
    } else if (auto* note = std::get_if<mitm::Note>(&command)) {
      if (!note->protocol.empty()) record_.protocol = note->protocol;
      if (!note->sni.empty()) record_.sni = note->sni;
      if (!note->alpn.empty()) record_.alpn = note->alpn;
      if (!note->block_reason.empty()) record_.block_reason = note->block_reason;
      if (!note->error.empty()) record_.error = note->error;
      if (!note->detail.empty()) record_.detail = note->detail;
    }
  }
  push_to_guest();
  finish_guest_close();
}

std::string FlowDriver::pool_key(bool tls) const {
  return grant_.host.to_string() + ":" + std::to_string(grant_.port) + "|" + grant_.rule.to_string() +
         (tls ? "|tls" : "|plain");
}

void FlowDriver::open_upstream(const mitm::Open& open) {
  if (closed_) return;
  if (dial_) return;  // one dial at a time
  if (open.reusable && pool_ != nullptr && !upstream_) {
    if (auto entry = pool_->take(pool_key(open.tls))) {
      record_.address = entry->address;
      adopt(std::move(entry->stream));
      run(mitm::Connected{entry->tls ? entry->tls->alpn() : std::string(), true, std::move(entry->tls)});
      pump();
      return;
    }
  }
  if (upstream_) {
    // A connection the layers finished with (half-closed) makes way quietly; a live one
    // can only be reset. Either way nothing from it reaches the layers again.
    auto old = std::move(upstream_);
    if (upstream_shut_) old->close();
    else old->reset();
  }
  upstream_shut_ = false;
  ++counters_.dials;
  std::weak_ptr<FlowDriver> weak = weak_from_this();
  dial_ = dialer_.dial(grant_.host, grant_.port, [weak](upstream::DialResult result) {
    if (auto self = weak.lock()) self->on_dialled(std::move(result));
  });
}

void FlowDriver::on_dialled(upstream::DialResult result) {
  dial_.reset();
  if (closed_) return;
  if (result.address) record_.address = result.address->to_string();
  if (!result.connected()) {
    run(mitm::ConnectFailed{std::string(result.reason), result.detail, result.rule});
    pump();
    return;
  }
  adopt(ByteStream::create(std::move(*result.socket), ByteStream::Marks{kHighWater, kLowWater}));
  run(mitm::Connected{});
  pump();
}

void FlowDriver::adopt(std::shared_ptr<ByteStream> stream) {
  upstream_ = std::move(stream);
  upstream_shut_ = false;
  std::weak_ptr<FlowDriver> weak = weak_from_this();
  upstream_->set_handlers(ByteStream::Handlers{
      [weak](std::span<const std::uint8_t> data) {
        if (auto self = weak.lock(); self && !self->closed_) {
          self->run(mitm::DataIn{mitm::Side::upstream, mitm::Bytes(data.begin(), data.end())});
          self->pump();
        }
      },
      [weak] {
        if (auto self = weak.lock(); self && !self->closed_) {
          // Both directions are over once our FIN went too: the connection is done.
          if (self->upstream_shut_) {
            if (auto stream = std::move(self->upstream_)) stream->close();
          }
          self->run(mitm::ClosedIn{mitm::Side::upstream, false, ""});
          self->pump();
        }
      },
      [weak](const boost::system::error_code& ec) {
        if (auto self = weak.lock(); self && !self->closed_) {
          ++self->counters_.upstream_errors;
          self->upstream_reset_seen_ = true;
          auto stream = std::move(self->upstream_);
          if (stream) stream->reset();
          self->run(mitm::ClosedIn{mitm::Side::upstream, true, ec.message()});
          self->pump();
        }
      },
      [weak] {
        if (auto self = weak.lock(); self && !self->closed_) self->pump();
      }});
}

void FlowDriver::close_upstream(bool reset) {
  if (dial_) {
    dial_->cancel();
    dial_.reset();
  }
  if (!upstream_) return;
  if (reset || closed_) {
    auto stream = std::move(upstream_);
    if (reset)
      stream->reset();
    else
      stream->close();
    return;
  }
  // Graceful: FIN after what is queued, and keep reading until the origin's own FIN.
  upstream_shut_ = true;
  upstream_->shutdown();
}

void FlowDriver::push_to_guest() {
  while (guest_ != nullptr && !guest_reset_ && !to_guest_.empty()) {
    auto& front = to_guest_.front();
    const std::size_t taken = guest_->send(std::span<const std::uint8_t>(front).subspan(to_guest_offset_));
    if (taken == 0) break;
    to_guest_offset_ += taken;
    to_guest_bytes_ -= taken;
    if (to_guest_offset_ == front.size()) {
      to_guest_.pop_front();
      to_guest_offset_ = 0;
    }
  }
}

void FlowDriver::finish_guest_close() {
  if (guest_ == nullptr || guest_reset_ || !guest_close_wanted_ || guest_fin_sent_ || !to_guest_.empty()) return;
  guest_fin_sent_ = true;
  guest_->shutdown_write();
}

void FlowDriver::pump() {
  if (pumping_ || guest_ == nullptr || closed_) return;
  auto keep = shared_from_this();
  pumping_ = true;
  for (int round = 0; round < 64 && guest_ != nullptr && !closed_; ++round) {
    bool progress = false;
    while (guest_ != nullptr && !guest_eof_seen_ && !guest_reset_ && root_->wants(mitm::Side::guest) &&
           (!upstream_ || upstream_->queued() < kHighWater)) {
      std::vector<std::uint8_t> data = guest_->read(kGuestChunk);
      if (data.empty()) {
        if (guest_->read_closed()) {
          guest_eof_seen_ = true;
          run(mitm::ClosedIn{mitm::Side::guest, false, ""});
          progress = true;
        }
        break;
      }
      run(mitm::DataIn{mitm::Side::guest, std::move(data)});
      progress = true;
    }
    const std::size_t before = to_guest_bytes_;
    push_to_guest();
    if (to_guest_bytes_ != before) progress = true;
    if (guest_ != nullptr && root_->pending(mitm::Side::guest) && to_guest_bytes_ < kLowWater &&
        !guest_->congested()) {
      run(mitm::Drained{mitm::Side::guest});
      progress = true;
    }
    if (!progress) break;
  }
  finish_guest_close();
  update_upstream_reading();
  arm_timer();
  pumping_ = false;
}

void FlowDriver::update_upstream_reading() {
  if (!upstream_) return;
  const bool room = to_guest_bytes_ < kHighWater && (guest_ == nullptr || !guest_->congested());
  upstream_->read(!closed_ && room && root_->wants(mitm::Side::upstream));
}

void FlowDriver::arm_timer() {
  const auto deadline = root_->deadline();
  if (!deadline || closed_) {
    if (timer_at_) timer_.cancel();
    timer_at_.reset();
    return;
  }
  if (timer_at_ && *timer_at_ == *deadline) return;
  timer_at_ = deadline;
  timer_.expires_at(*deadline);
  std::weak_ptr<FlowDriver> weak = weak_from_this();
  timer_.async_wait([weak](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->closed_) return;
    self->timer_at_.reset();
    self->run(mitm::TimerIn{});
    self->pump();
  });
}

void FlowDriver::on_closed(Close how, const CloseInfo& info) {
  if (closed_) return;
  auto keep = shared_from_this();
  guest_ = nullptr;
  // What is still open inside (requests without their answer) is recorded as cut short.
  run(mitm::ClosedIn{mitm::Side::guest, true, "the connection ended (" + std::string(info.reason) + ")"});
  closed_ = true;
  timer_.cancel();
  close_upstream(how == Close::abortive);
  record_.request_bytes = info.bytes_in;
  record_.response_bytes = info.bytes_out;
  record_.duration_ms = millis(started_, mitm::Clock::now());
  record_.blocked = !record_.block_reason.empty();
  if (record_.blocked)
    record_.close_reason = "refused";
  else if (!record_.error.empty() && info.reason == "aborted")
    record_.close_reason = "failed";
  else if (info.reason == "aborted")
    record_.close_reason = upstream_reset_seen_ ? "reset_by_upstream" : "reset_by_proxy";
  else
    record_.close_reason = std::string(info.reason);
  if (sink_) sink_(record_);
}

}  // namespace airlock::flow
