// One intercepted flow; see session.hpp for the theory of operation.
#include "proxy/mitm/session.hpp"

#include "proxy/tls/classify.hpp"

namespace airlock::mitm {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kAlertAccessDenied = 49;

void append(Bytes& out, const Bytes& in) { out.insert(out.end(), in.begin(), in.end()); }

bool move_all(Bytes& from, Bytes& to) {
  append(to, from);
  from.clear();
  return true;
}

// Encrypts `plain` into `out` a record at a time: write_plaintext stops while its output
// waits, so the ciphertext is collected after every record. Returns whether any moved;
// what the endpoint can't take now stays in `plain`.
bool encrypt(tls::TlsEndpoint& tls, Bytes& plain, Bytes& out) {
  std::size_t offset = 0;
  while (offset < plain.size()) {
    const std::size_t n = tls.write_plaintext(std::span(plain).subspan(offset));
    append(out, tls.take_ciphertext());
    if (n == 0) break;
    offset += n;
  }
  plain.erase(plain.begin(), plain.begin() + static_cast<std::ptrdiff_t>(offset));
  return offset > 0;
}

}  // namespace

MitmSession::MitmSession(std::shared_ptr<MitmContext> context, FlowTarget flow,
                         bool opaque_allowed, Clock::time_point now)
    : context_(std::move(context)), flow_(std::move(flow)), opaque_allowed_(opaque_allowed),
      started_(now) {
  flow_.tls = false;
  flow_.sni.reset();
}

std::string_view MitmSession::protocol() const { return protocol_; }

bool MitmSession::wants_guest_data() const {
  // A closed session still reads (and drops) what the guest sends, so its TCP flow can
  // finish instead of waiting on a full receive buffer.
  if (state_ == State::closed) return true;
  const std::size_t pipeline_out = pipeline_ ? pipeline_->to_upstream().size() : 0;
  return guest_plain_.size() < kMaxPendingGuest && guest_cipher_.size() < kMaxPendingGuest &&
         to_upstream_.size() + pipeline_out < kMaxPendingGuest;
}

void MitmSession::on_closed(Clock::time_point now) {
  if (pipeline_) {
    pipeline_->abort_all(reason::flow_closed, now);
    auto& events = pipeline_->events();
    while (!events.empty()) {
      events_.push_back(std::move(events.front()));
      events.pop_front();
    }
  }
  state_ = State::closed;
}

Bytes MitmSession::take_to_guest() { return std::exchange(to_guest_, {}); }
Bytes MitmSession::take_to_upstream() { return std::exchange(to_upstream_, {}); }

std::optional<Clock::time_point> MitmSession::next_deadline() const {
  if (state_ == State::classifying && first_.empty() && opaque_allowed_)
    return started_ + context_->options().classify_timeout;
  return std::nullopt;
}

void MitmSession::on_timer(Clock::time_point now) {
  if (auto deadline = next_deadline(); deadline && now >= *deadline) start_opaque(now);
}

void MitmSession::on_guest(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  switch (state_) {
    case State::classifying:
      first_.insert(first_.end(), bytes.begin(), bytes.end());
      classify(now);
      break;
    case State::tls:
      guest_cipher_.insert(guest_cipher_.end(), bytes.begin(), bytes.end());
      pump(now);
      break;
    case State::http:
      guest_plain_.insert(guest_plain_.end(), bytes.begin(), bytes.end());
      pump(now);
      break;
    case State::opaque:
      to_upstream_.insert(to_upstream_.end(), bytes.begin(), bytes.end());
      break;
    case State::closed:
      break;
  }
}

void MitmSession::classify(Clock::time_point now) {
  const tls::FlowKind kind = tls::classify_first_bytes(first_);
  if (kind == tls::FlowKind::need_more) {
    if (first_.size() >= kMaxFirstBytes) start_opaque(now);
    return;
  }
  if (kind == tls::FlowKind::http) {
    start_http(now);
  } else if (kind == tls::FlowKind::opaque) {
    start_opaque(now);
  } else {
    tls::ClientHello hello;
    switch (tls::parse_client_hello(first_, hello)) {
      case tls::HelloStatus::need_more:
        return;
      case tls::HelloStatus::complete:
        start_tls(hello, now);
        return;
      default:
        protocol_ = "tls";
        refuse_flow("bad_client_hello", "the ClientHello could not be read", CloseHow::reset);
        return;
    }
  }
}

void MitmSession::start_opaque(Clock::time_point /*now*/) {
  protocol_ = "opaque";
  if (!opaque_allowed_) {
    refuse_flow(reason::opaque_not_allowed,
                "only a rule naming host:port lets a non-HTTP protocol through",
                CloseHow::reset);
    return;
  }
  state_ = State::opaque;
  append(to_upstream_, first_);
  first_.clear();
}

void MitmSession::start_http(Clock::time_point now) {
  protocol_ = "http";
  state_ = State::http;
  pipeline_ = std::make_unique<HttpPipeline>(context_->judge(), context_->secrets(), flow_);
  guest_plain_ = std::exchange(first_, {});
  pump(now);
}

void MitmSession::start_tls(const tls::ClientHello& hello, Clock::time_point now) {
  protocol_ = "tls";
  state_ = State::tls;
  flow_.tls = true;
  std::string leaf_name = flow_.host.to_string();
  if (hello.sni_present) {
    sni_text_ = hello.sni;
    auto sni = policy::Host::parse(hello.sni);
    if (!sni) {
      refuse_flow("bad_client_hello", "bad SNI: " + sni.error(), CloseHow::reset);
      return;
    }
    flow_.sni = *sni;
    leaf_name = sni->to_string();
    if (*sni != flow_.host) {
      refusal_.emplace(std::string(reason::sni_host_mismatch),
                       "SNI " + leaf_name + " on a flow to " + flow_.host.to_string());
    } else {
      policy::Decision decision = context_->evaluator().evaluate(*sni, flow_.port);
      if (!decision.allowed) refusal_.emplace(std::string(decision.reason), "");
    }
  }
  auto leaf = context_->minter().leaf_for(leaf_name, std::chrono::system_clock::now());
  if (!leaf) {
    refuse_flow(reason::guest_tls_failed, "cannot mint a certificate: " + leaf.error(),
                CloseHow::reset);
    return;
  }
  leaf_ = *leaf;
  auto server = tls::TlsEndpoint::server(context_->server_context());
  if (!server) {
    refuse_flow(reason::guest_tls_failed, server.error(), CloseHow::reset);
    return;
  }
  guest_tls_ = std::move(*server);
  if (auto set = guest_tls_->set_certificate(leaf_->certificate.get(), context_->minter().leaf_key());
      !set) {
    refuse_flow(reason::guest_tls_failed, set.error(), CloseHow::reset);
    return;
  }
  guest_cipher_ = std::exchange(first_, {});
  if (!refusal_) {
    const std::string host = flow_.host.to_string();
    auto client = tls::TlsEndpoint::client(context_->client_context(),
                                           flow_.host.is_ip() ? std::string() : host, host);
    if (!client) {
      upstream_failure_ = client.error();
    } else {
      upstream_tls_ = std::move(*client);
    }
    pipeline_ = std::make_unique<HttpPipeline>(context_->judge(), context_->secrets(), flow_);
  }
  pump(now);
}

bool MitmSession::upstream_ready() const {
  if (state_ == State::http) return true;
  return upstream_established_;
}

void MitmSession::pump(Clock::time_point now) {
  for (int round = 0; round < 64 && state_ != State::closed; ++round) {
    bool progress = false;
    if (guest_tls_) {
      if (!guest_cipher_.empty()) {
        const std::size_t n = guest_tls_->feed_ciphertext(guest_cipher_);
        guest_cipher_.erase(guest_cipher_.begin(), guest_cipher_.begin() + static_cast<std::ptrdiff_t>(n));
        if (n > 0) progress = true;
      }
      const auto status = guest_tls_->step();
      append(to_guest_, guest_tls_->take_ciphertext());
      if (status == tls::TlsEndpoint::State::failed) {
        refuse_flow(reason::guest_tls_failed, guest_tls_->error(), CloseHow::reset);
        return;
      }
      if (status == tls::TlsEndpoint::State::established && !guest_established_) {
        guest_established_ = true;
        progress = true;
        if (refusal_) {
          guest_tls_->send_alert_and_close(kAlertAccessDenied);
          append(to_guest_, guest_tls_->take_ciphertext());
          auto [why, detail] = *refusal_;
          refuse_flow(why, detail, CloseHow::graceful);
          return;
        }
      }
      if (guest_established_) {
        while (guest_plain_.size() < kMaxPendingGuest &&
               guest_tls_->read_plaintext(guest_plain_, kReadChunk) > 0) {
          progress = true;
        }
        append(to_guest_, guest_tls_->take_ciphertext());
        if (guest_tls_->peer_closed() && !guest_eof_) {
          guest_eof_ = true;
          progress = true;
        }
      }
    }
    if (upstream_tls_ && !upstream_failure_) {
      if (!upstream_cipher_.empty()) {
        const std::size_t n = upstream_tls_->feed_ciphertext(upstream_cipher_);
        upstream_cipher_.erase(upstream_cipher_.begin(), upstream_cipher_.begin() + static_cast<std::ptrdiff_t>(n));
        if (n > 0) progress = true;
      }
      const auto status = upstream_tls_->step();
      append(to_upstream_, upstream_tls_->take_ciphertext());
      if (status == tls::TlsEndpoint::State::failed) {
        upstream_failure_ = upstream_tls_->error();
        progress = true;
      } else {
        if (status == tls::TlsEndpoint::State::established && !upstream_established_) {
          upstream_established_ = true;
          progress = true;
        }
        if (upstream_established_) {
          Bytes plain;
          while (plain.size() < kMaxPendingGuest &&
                 upstream_tls_->read_plaintext(plain, kReadChunk) > 0) {
          }
          append(to_upstream_, upstream_tls_->take_ciphertext());
          if (!plain.empty() && pipeline_) {
            pipeline_->on_upstream(plain, now);
            progress = true;
          }
          if (upstream_tls_->peer_closed() && !upstream_eof_) {
            upstream_eof_ = true;
            progress = true;
          }
        }
      }
    }
    if (pipeline_) {
      const bool can_feed = upstream_ready() || upstream_failure_.has_value();
      if (can_feed && !guest_plain_.empty()) {
        const std::size_t n = pipeline_->on_guest(guest_plain_, now);
        if (n > 0) {
          guest_plain_.erase(guest_plain_.begin(), guest_plain_.begin() + static_cast<std::ptrdiff_t>(n));
          progress = true;
        }
      }
      if (upstream_failure_ && !failure_delivered_ && (pipeline_->requests() > 0 || guest_eof_)) {
        failure_delivered_ = true;
        pipeline_->on_upstream_failed(reason::upstream_tls_failed, *upstream_failure_, now);
        progress = true;
      }
      if (can_feed && guest_eof_ && !guest_eof_delivered_ && guest_plain_.empty()) {
        guest_eof_delivered_ = true;
        pipeline_->on_guest_eof(now);
        progress = true;
      }
      if (upstream_ready() && upstream_eof_ && !upstream_eof_delivered_) {
        upstream_eof_delivered_ = true;
        pipeline_->on_upstream_eof(now);
        progress = true;
      }
      if (drain_pipeline(now)) progress = true;
    } else if (guest_eof_ && state_ == State::tls) {
      // Refused or failed before a pipeline existed: nothing more to do.
      guest_close_ = CloseHow::graceful;
      upstream_close_ = CloseHow::graceful;
    }
    if (!progress) break;
  }
}

bool MitmSession::drain_pipeline(Clock::time_point /*now*/) {
  bool moved = false;
  Bytes& up = pipeline_->to_upstream();
  if (upstream_failure_) {
    up.clear();
  } else if (!up.empty()) {
    moved = upstream_tls_ ? encrypt(*upstream_tls_, up, to_upstream_) : move_all(up, to_upstream_);
  }
  Bytes& down = pipeline_->to_guest();
  if (!down.empty())
    moved = (guest_tls_ ? encrypt(*guest_tls_, down, to_guest_) : move_all(down, to_guest_)) || moved;
  auto& events = pipeline_->events();
  while (!events.empty()) {
    events_.push_back(std::move(events.front()));
    events.pop_front();
  }
  // Closes: a reset goes at once; a graceful close waits until the side's bytes are out.
  const CloseHow g = pipeline_->guest_close();
  if (g == CloseHow::reset) {
    guest_close_ = CloseHow::reset;
  } else if (g == CloseHow::graceful && down.empty() && guest_close_ == CloseHow::none) {
    if (guest_tls_ && !guest_notified_) {
      guest_notified_ = true;
      guest_tls_->close_notify();
      append(to_guest_, guest_tls_->take_ciphertext());
    }
    guest_close_ = CloseHow::graceful;
  }
  const CloseHow u = pipeline_->upstream_close();
  if (u == CloseHow::reset) {
    upstream_close_ = CloseHow::reset;
  } else if (u == CloseHow::graceful && up.empty() && upstream_close_ == CloseHow::none) {
    if (upstream_tls_ && !upstream_notified_ && !upstream_failure_) {
      upstream_notified_ = true;
      upstream_tls_->close_notify();
      append(to_upstream_, upstream_tls_->take_ciphertext());
    }
    upstream_close_ = CloseHow::graceful;
  }
  return moved;
}

void MitmSession::on_guest_eof(Clock::time_point now) {
  guest_eof_ = true;
  switch (state_) {
    case State::classifying:
      state_ = State::closed;
      guest_close_ = CloseHow::graceful;
      upstream_close_ = CloseHow::graceful;
      break;
    case State::opaque:
      upstream_close_ = CloseHow::graceful;
      break;
    case State::tls:
    case State::http:
      pump(now);
      break;
    case State::closed:
      break;
  }
}

void MitmSession::on_upstream(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  switch (state_) {
    case State::classifying:
      // The server spoke first: not HTTP, not TLS.
      start_opaque(now);
      if (state_ == State::opaque) to_guest_.insert(to_guest_.end(), bytes.begin(), bytes.end());
      break;
    case State::tls:
      if (upstream_tls_) {
        upstream_cipher_.insert(upstream_cipher_.end(), bytes.begin(), bytes.end());
        pump(now);
      }
      break;
    case State::http:
      pipeline_->on_upstream(bytes, now);
      pump(now);
      break;
    case State::opaque:
      to_guest_.insert(to_guest_.end(), bytes.begin(), bytes.end());
      break;
    case State::closed:
      break;
  }
}

void MitmSession::on_upstream_eof(Clock::time_point now) {
  upstream_eof_ = true;
  switch (state_) {
    case State::classifying:
      state_ = State::closed;
      guest_close_ = CloseHow::graceful;
      upstream_close_ = CloseHow::graceful;
      break;
    case State::opaque:
      guest_close_ = CloseHow::graceful;
      break;
    case State::tls:
      if (!upstream_established_ && !upstream_failure_) upstream_failure_ = "upstream closed during the TLS handshake";
      pump(now);
      break;
    case State::http:
      pump(now);
      break;
    case State::closed:
      break;
  }
}

void MitmSession::on_upstream_error(std::string detail, Clock::time_point now) {
  if (pipeline_ && state_ != State::closed) {
    if (!upstream_ready()) {
      if (!upstream_failure_) upstream_failure_ = detail;
      pump(now);
      return;
    }
    pipeline_->on_upstream_failed(reason::upstream_failed, std::move(detail), now);
    pump(now);
    return;
  }
  guest_close_ = CloseHow::reset;
  upstream_close_ = CloseHow::reset;
}

void MitmSession::refuse_flow(std::string_view why, std::string detail, CloseHow how) {
  nlohmann::json event = {{"kind", "flow"},
                          {"host", flow_.host.to_string()},
                          {"port", flow_.port},
                          {"protocol", std::string(protocol_)},
                          {"blocked", true},
                          {"block_reason", std::string(why)},
                          {"rule", flow_.rule}};
  if (!detail.empty()) event["detail"] = std::move(detail);
  if (!sni_text_.empty()) event["sni"] = sni_text_;
  events_.push_back(std::move(event));
  state_ = State::closed;
  guest_close_ = how;
  upstream_close_ = how == CloseHow::reset ? CloseHow::reset : CloseHow::graceful;
}

}  // namespace airlock::mitm
