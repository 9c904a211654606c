// TLS both ways around the HTTP layer; see tls_bridge.hpp.
#include "proxy/mitm/tls_bridge.hpp"

#include "proxy/http/h1_codec.hpp"
#include "proxy/http2/h2_codec.hpp"
#include "proxy/mitm/http_layer.hpp"

namespace airlock::mitm {

namespace {

constexpr int kAlertAccessDenied = 49;
constexpr std::size_t kReadChunk = 64 * 1024;

// Feeds what the endpoint takes of `pending` and drops it; an emptied buffer gives its
// memory back (an idle connection keeps none).
void feed(tls::TlsEndpoint& tls, Bytes& pending) {
  if (pending.empty()) return;
  const std::size_t n = tls.feed_ciphertext(pending);
  pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
  if (pending.empty() && pending.capacity() > 4096) Bytes().swap(pending);
}

}  // namespace

TlsBridge::TlsBridge(std::shared_ptr<MitmContext> context, FlowTarget flow, const tls::ClientHello& hello,
                     Bytes first, std::optional<Refusal> refusal)
    : context_(std::move(context)), flow_(std::move(flow)), refusal_(std::move(refusal)),
      guest_cipher_(std::move(first)) {
  flow_.tls = true;
  leaf_name_ = flow_.sni ? flow_.sni->to_string() : flow_.host.to_string();
  (void)hello;
}

TlsBridge::~TlsBridge() = default;

std::optional<Clock::time_point> TlsBridge::deadline() const { return child_ ? child_->deadline() : std::nullopt; }

bool TlsBridge::wants(Side side) const {
  if (dead_) return true;
  if (side == Side::guest) return guest_cipher_.size() < tls::kMaxPendingCiphertext && (!child_ || child_->wants(Side::guest));
  return upstream_cipher_.size() < tls::kMaxPendingCiphertext && (!child_ || child_->wants(Side::upstream));
}

bool TlsBridge::pending(Side side) const { return child_ && child_->pending(side); }

void TlsBridge::fail_guest(std::string detail, Commands& out) {
  dead_ = true;
  ++context_->counters().guest_tls_failed;
  out.push_back(Note{"tls", "", "", "", std::string(reason::guest_tls_failed), std::move(detail)});
  out.push_back(Close{Side::guest, true});
  if (upstream_open_) out.push_back(Close{Side::upstream, true});
}

void TlsBridge::drop_upstream() {
  upstream_.reset();
  upstream_cipher_.clear();
  upstream_plain_.clear();
  upstream_open_ = false;
  upstream_established_ = false;
  upstream_eof_delivered_ = false;
}

void TlsBridge::encrypt(tls::TlsEndpoint& tls, Side side, Bytes& plain, Commands& out) {
  std::size_t offset = 0;
  Bytes cipher;
  while (offset < plain.size()) {
    const std::size_t n = tls.write_plaintext(std::span(plain).subspan(offset));
    auto chunk = tls.take_ciphertext();
    cipher.insert(cipher.end(), chunk.begin(), chunk.end());
    if (n == 0) break;
    offset += n;
  }
  plain.erase(plain.begin(), plain.begin() + static_cast<std::ptrdiff_t>(offset));
  if (!cipher.empty()) out.push_back(Send{side, std::move(cipher)});
}

void TlsBridge::handle(Event event, Clock::time_point now, Commands& out) {
  if (dead_) return;
  if (std::holds_alternative<Start>(event)) {
    auto leaf = context_->minter().leaf_for(leaf_name_, std::chrono::system_clock::now());
    if (!leaf) return fail_guest("cannot mint a certificate: " + leaf.error(), out);
    leaf_ = *leaf;
    auto server = tls::TlsEndpoint::server(context_->server_context());
    if (!server) return fail_guest(server.error(), out);
    guest_ = std::move(*server);
    if (auto set = guest_->set_certificate(leaf_->certificate.get(), context_->minter().leaf_key()); !set)
      return fail_guest(set.error(), out);
    pump_guest(now, out);
    return;
  }
  if (auto* data = std::get_if<DataIn>(&event)) {
    if (data->side == Side::guest) {
      guest_cipher_.insert(guest_cipher_.end(), data->bytes.begin(), data->bytes.end());
      pump_guest(now, out);
    } else if (upstream_) {
      upstream_cipher_.insert(upstream_cipher_.end(), data->bytes.begin(), data->bytes.end());
      pump_upstream(now, out);
    }
    return;
  }
  if (auto* connected = std::get_if<Connected>(&event)) {
    if (connected->tls) {
      // A pooled connection, its TLS session already established for this flow's name.
      upstream_ = std::move(connected->tls);
      upstream_open_ = true;
      upstream_established_ = true;
      to_child(Connected{upstream_->alpn(), true, nullptr}, now, out);
      return;
    }
    // TCP is up: TLS on top, for the flow's name.
    const std::string host = flow_.host.to_string();
    auto client = tls::TlsEndpoint::client(context_->client_context(), flow_.host.is_ip() ? std::string() : host,
                                           host, alpn_offer_, host + ":" + std::to_string(flow_.port));
    if (!client) {
      to_child(ConnectFailed{std::string(reason::upstream_tls_failed), client.error(), ""}, now, out);
      out.push_back(Close{Side::upstream, true});
      drop_upstream();
      return;
    }
    upstream_ = std::shared_ptr<tls::TlsEndpoint>(std::move(*client));
    pump_upstream(now, out);
    return;
  }
  if (auto* failed = std::get_if<ConnectFailed>(&event)) {
    drop_upstream();
    to_child(std::move(*failed), now, out);
    return;
  }
  if (auto* closed = std::get_if<ClosedIn>(&event)) {
    if (closed->side == Side::guest) {
      if (!child_) {
        // Gone before its handshake finished: nothing to tell anyone.
        dead_ = true;
        out.push_back(Note{"tls", "", "", "", "", closed->reset ? "the guest reset during the TLS handshake"
                                                           : "the guest closed during the TLS handshake"});
        out.push_back(Close{Side::guest, closed->reset});
        if (upstream_open_) out.push_back(Close{Side::upstream, true});
        return;
      }
      pump_guest(now, out);
      if (!guest_eof_delivered_) {
        guest_eof_delivered_ = true;
        to_child(ClosedIn{Side::guest, closed->reset, closed->detail}, now, out);
      }
      return;
    }
    // Upstream transport closed.
    if (upstream_ && !closed->reset) pump_upstream(now, out);
    if (upstream_open_ && !upstream_established_) {
      drop_upstream();
      to_child(ConnectFailed{std::string(reason::upstream_tls_failed),
                             closed->reset ? "the origin reset the connection during the TLS handshake"
                                           : "the origin closed the connection during the TLS handshake",
                             ""},
               now, out);
      return;
    }
    const bool deliver = upstream_open_ && !upstream_eof_delivered_;
    drop_upstream();
    if (deliver) to_child(ClosedIn{Side::upstream, closed->reset, closed->detail}, now, out);
    return;
  }
  // Drained, TimerIn: for the layer above.
  const bool drained = std::holds_alternative<Drained>(event);
  to_child(std::move(event), now, out);
  if (drained) {
    pump_guest(now, out);
    pump_upstream(now, out);
  }
}

void TlsBridge::pump_guest(Clock::time_point now, Commands& out) {
  if (!guest_ || dead_) return;
  feed(*guest_, guest_cipher_);
  const auto state = guest_->step();
  if (auto cipher = guest_->take_ciphertext(); !cipher.empty()) out.push_back(Send{Side::guest, std::move(cipher)});
  if (state == tls::TlsEndpoint::State::failed) return fail_guest(guest_->error(), out);
  if (state == tls::TlsEndpoint::State::established && !guest_established_) {
    guest_established_ = true;
    const std::string alpn = guest_->alpn();
    if (refusal_) {
      guest_->send_alert_and_close(kAlertAccessDenied);
      if (auto cipher = guest_->take_ciphertext(); !cipher.empty()) out.push_back(Send{Side::guest, std::move(cipher)});
      dead_ = true;
      out.push_back(Note{"tls", "", alpn, refusal_->reason, "", refusal_->detail});
      out.push_back(Close{Side::guest, false});
      return;
    }
    out.push_back(Note{"tls", "", alpn, "", "", ""});
    std::unique_ptr<http::GuestCodec> codec;
    if (alpn == "h2") {
      ++context_->counters().guest_h2;
      codec = std::make_unique<http2::H2GuestCodec>();
    } else {
      codec = std::make_unique<http::H1GuestCodec>();
    }
    child_ = std::make_unique<HttpLayer>(context_, flow_, std::move(codec));
    to_child(Start{}, now, out);
  }
  if (!guest_established_ || dead_) return;
  // Plaintext for the layer above, while it takes more.
  std::size_t step = 0;
  while (!dead_ && child_->wants(Side::guest) && step < kMaxPlaintextStep) {
    Bytes plain;
    if (guest_->read_plaintext(plain, kReadChunk) == 0) break;
    step += plain.size();
    to_child(DataIn{Side::guest, std::move(plain)}, now, out);
    if (guest_) feed(*guest_, guest_cipher_);
  }
  if (dead_) return;
  if (auto cipher = guest_->take_ciphertext(); !cipher.empty()) out.push_back(Send{Side::guest, std::move(cipher)});
  if (guest_->peer_closed() && !guest_eof_delivered_) {
    guest_eof_delivered_ = true;
    to_child(ClosedIn{Side::guest, false, ""}, now, out);
  }
}

void TlsBridge::pump_upstream(Clock::time_point now, Commands& out) {
  if (!upstream_ || dead_) return;
  feed(*upstream_, upstream_cipher_);
  const auto state = upstream_->step();
  if (auto cipher = upstream_->take_ciphertext(); !cipher.empty()) out.push_back(Send{Side::upstream, std::move(cipher)});
  if (state == tls::TlsEndpoint::State::failed) {
    const std::string error = upstream_->error();
    const bool during_handshake = !upstream_established_;
    drop_upstream();
    out.push_back(Close{Side::upstream, true});
    if (during_handshake) ++context_->counters().upstream_tls_failed;
    if (during_handshake)
      to_child(ConnectFailed{std::string(reason::upstream_tls_failed), error, ""}, now, out);
    else
      to_child(ClosedIn{Side::upstream, true, "TLS: " + error}, now, out);
    return;
  }
  if (state == tls::TlsEndpoint::State::established && !upstream_established_) {
    upstream_established_ = true;
    to_child(Connected{upstream_->alpn(), false, nullptr}, now, out);
    if (!upstream_ || dead_) return;
    if (!upstream_plain_.empty()) encrypt(*upstream_, Side::upstream, upstream_plain_, out);
  }
  if (!upstream_established_ || !upstream_) return;
  std::size_t step = 0;
  while (upstream_ && !dead_ && child_ && child_->wants(Side::upstream) && step < kMaxPlaintextStep) {
    Bytes plain;
    if (upstream_->read_plaintext(plain, kReadChunk) == 0) break;
    step += plain.size();
    to_child(DataIn{Side::upstream, std::move(plain)}, now, out);
    if (upstream_) feed(*upstream_, upstream_cipher_);
  }
  if (!upstream_ || dead_) return;
  if (auto cipher = upstream_->take_ciphertext(); !cipher.empty()) out.push_back(Send{Side::upstream, std::move(cipher)});
  if (upstream_->peer_closed() && !upstream_eof_delivered_) {
    upstream_eof_delivered_ = true;
    to_child(ClosedIn{Side::upstream, false, ""}, now, out);
  }
}

void TlsBridge::to_child(Event event, Clock::time_point now, Commands& out) {
  if (!child_ || dead_) return;
  Commands mine;
  child_->handle(std::move(event), now, mine);
  for (auto& command : mine) {
    if (auto* send = std::get_if<Send>(&command)) {
      if (send->side == Side::guest) {
        encrypt(*guest_, Side::guest, send->bytes, out);
      } else if (upstream_ && upstream_established_) {
        encrypt(*upstream_, Side::upstream, send->bytes, out);
      } else if (upstream_open_) {
        upstream_plain_.insert(upstream_plain_.end(), send->bytes.begin(), send->bytes.end());
      }
    } else if (auto* close = std::get_if<Close>(&command)) {
      if (close->side == Side::guest) {
        if (!close->reset) {
          guest_->close_notify();
          if (auto cipher = guest_->take_ciphertext(); !cipher.empty())
            out.push_back(Send{Side::guest, std::move(cipher)});
        }
        out.push_back(std::move(command));
      } else {
        if (!upstream_open_) continue;
        if (upstream_ && upstream_established_ && !close->reset) {
          upstream_->close_notify();
          if (auto cipher = upstream_->take_ciphertext(); !cipher.empty())
            out.push_back(Send{Side::upstream, std::move(cipher)});
        }
        drop_upstream();
        out.push_back(std::move(command));
      }
    } else if (auto* open = std::get_if<Open>(&command)) {
      alpn_offer_ = open->alpn;
      upstream_open_ = true;
      out.push_back(Open{open->alpn, true, open->reusable});
    } else if (std::holds_alternative<Release>(command)) {
      // Reusable only when nothing of TLS is in flight either way.
      if (upstream_ && upstream_established_ && upstream_cipher_.empty() && upstream_plain_.empty() &&
          upstream_->state() == tls::TlsEndpoint::State::established) {
        out.push_back(Release{std::move(upstream_)});
        drop_upstream();
      } else if (upstream_open_) {
        if (upstream_ && upstream_established_) {
          upstream_->close_notify();
          if (auto cipher = upstream_->take_ciphertext(); !cipher.empty())
            out.push_back(Send{Side::upstream, std::move(cipher)});
        }
        drop_upstream();
        out.push_back(Close{Side::upstream, false});
      }
    } else {
      out.push_back(std::move(command));
    }
  }
}

}  // namespace airlock::mitm
