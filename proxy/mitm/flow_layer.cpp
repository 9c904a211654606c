// Classification and hand-off; see flow_layer.hpp.
#include "proxy/mitm/flow_layer.hpp"

#include <string_view>

#include "proxy/http/h1_codec.hpp"
#include "proxy/mitm/http_layer.hpp"
#include "proxy/mitm/tls_bridge.hpp"
#include "proxy/mitm/tunnel_layer.hpp"
#include "proxy/tls/classify.hpp"
#include "proxy/tls/client_hello.hpp"

namespace airlock::mitm {

namespace {

constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace

FlowLayer::FlowLayer(std::shared_ptr<MitmContext> context, const policy::Grant& grant)
    : context_(std::move(context)), opaque_allowed_(grant.opaque_allowed) {
  flow_.host = grant.host;
  flow_.port = grant.port;
  flow_.rule = grant.rule;
}

FlowLayer::~FlowLayer() = default;

std::optional<Clock::time_point> FlowLayer::deadline() const {
  return child_ ? child_->deadline() : std::nullopt;
}

bool FlowLayer::wants(Side side) const {
  if (child_) return child_->wants(side);
  return side == Side::upstream || first_.size() < kMaxFirstBytes;
}

bool FlowLayer::pending(Side side) const { return child_ && child_->pending(side); }

void FlowLayer::refuse(std::string_view protocol, std::string_view why, std::string detail, bool reset,
                       Commands& out) {
  done_ = true;
  first_.clear();
  ++context_->counters().flows_refused;
  out.push_back(Note{std::string(protocol), "", "", std::string(why), "", std::move(detail)});
  out.push_back(Close{Side::guest, reset});
  if (early_ != Early::none) out.push_back(Close{Side::upstream, true});
}

void FlowLayer::become(std::unique_ptr<Layer> child, std::string_view protocol, Clock::time_point now,
                       Commands& out) {
  child_ = std::move(child);
  ++(protocol == "http" ? context_->counters().flows_http : context_->counters().flows_opaque);
  out.push_back(Note{std::string(protocol), "", "", "", "", ""});
  to_child(Start{}, now, out);
}

void FlowLayer::to_child(Event event, Clock::time_point now, Commands& out) {
  // Upstream events the child never asked for belong to the early connection.
  if (!child_opened_) {
    if (std::holds_alternative<Connected>(event)) {
      early_ = Early::connected;
      return;
    }
    if (std::holds_alternative<ConnectFailed>(event)) {
      early_ = Early::none;
      return;
    }
    if (auto* closed = std::get_if<ClosedIn>(&event); closed && closed->side == Side::upstream) {
      early_ = Early::none;  // the origin gave up on it before it was used
      return;
    }
    if (auto* data = std::get_if<DataIn>(&event); data && data->side == Side::upstream) {
      // The origin spoke on a flow the client made TLS or HTTP: not a connection to keep.
      early_ = Early::none;
      out.push_back(Close{Side::upstream, true});
      return;
    }
  }
  Commands mine;
  child_->handle(std::move(event), now, mine);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (std::holds_alternative<Open>(mine[i]) && !child_opened_) {
      child_opened_ = true;
      if (early_ == Early::dialling) continue;  // its Connected (or failure) comes to the child
      if (early_ == Early::connected) {
        early_ = Early::none;
        // The connection is up already: the child hears so, after what it said so far.
        for (std::size_t j = 0; j < i; ++j) out.push_back(std::move(mine[j]));
        Commands rest(std::make_move_iterator(mine.begin() + static_cast<std::ptrdiff_t>(i) + 1),
                      std::make_move_iterator(mine.end()));
        for (auto& c : rest) out.push_back(std::move(c));
        to_child(Connected{}, now, out);
        return;
      }
    } else if (std::holds_alternative<Open>(mine[i])) {
      child_opened_ = true;
    }
    out.push_back(std::move(mine[i]));
  }
}

void FlowLayer::handle(Event event, Clock::time_point now, Commands& out) {
  if (child_) {
    to_child(std::move(event), now, out);
    return;
  }
  if (done_) return;
  if (std::holds_alternative<Start>(event)) {
    if (opaque_allowed_) {
      // Whoever speaks first decides: dial now, so a server-first protocol can.
      early_ = Early::dialling;
      out.push_back(Open{});
    }
  } else if (auto* data = std::get_if<DataIn>(&event)) {
    if (data->side == Side::upstream) {
      if (!opaque_allowed_) return;
      // The origin spoke first: a server-first protocol, tunnelled.
      early_ = Early::none;
      child_opened_ = true;
      child_ = std::make_unique<TunnelLayer>(std::exchange(first_, {}), true);
      ++context_->counters().flows_opaque;
      out.push_back(Note{"opaque", "", "", "", "", ""});
      child_->handle(Start{}, now, out);
      child_->handle(std::move(event), now, out);
      return;
    }
    first_.insert(first_.end(), data->bytes.begin(), data->bytes.end());
    classify(now, out);
  } else if (std::holds_alternative<Connected>(event)) {
    early_ = Early::connected;
  } else if (std::holds_alternative<ConnectFailed>(event)) {
    early_ = Early::none;
  } else if (auto* closed = std::get_if<ClosedIn>(&event)) {
    if (closed->side == Side::guest) {
      done_ = true;  // gone before saying anything we could classify
      out.push_back(Note{"tcp", "", "", "", "", ""});
      out.push_back(Close{Side::guest, closed->reset});
      if (early_ != Early::none) out.push_back(Close{Side::upstream, closed->reset});
    } else {
      early_ = Early::none;
    }
  }
}

void FlowLayer::classify(Clock::time_point now, Commands& out) {
  const std::string_view start(reinterpret_cast<const char*>(first_.data()),
                               std::min(first_.size(), kH2Preface.size()));
  if (!start.empty() && kH2Preface.starts_with(start)) {
    if (start.size() < kH2Preface.size()) return;
    return refuse("http", reason::h2c_refused, "HTTP/2 with prior knowledge over cleartext", true, out);
  }
  const tls::FlowKind kind = tls::classify_first_bytes(first_);
  if (kind == tls::FlowKind::need_more) {
    if (first_.size() >= kMaxFirstBytes) goto opaque;
    return;
  }
  if (kind == tls::FlowKind::http) {
    FlowTarget target = flow_;
    target.tls = false;
    auto layer = std::make_unique<HttpLayer>(context_, target, std::make_unique<http::H1GuestCodec>());
    Bytes first = std::exchange(first_, {});
    become(std::move(layer), "http", now, out);
    to_child(DataIn{Side::guest, std::move(first)}, now, out);
    return;
  }
  if (kind == tls::FlowKind::tls) {
    tls::ClientHello hello;
    switch (tls::parse_client_hello(first_, hello)) {
      case tls::HelloStatus::need_more:
        return;
      case tls::HelloStatus::complete:
        break;
      default:
        return refuse("tls", "bad_client_hello", "the ClientHello could not be read", true, out);
    }
    FlowTarget target = flow_;
    target.tls = true;
    std::optional<TlsBridge::Refusal> refusal;
    if (hello.sni_present) {
      auto sni = policy::Host::parse(hello.sni);
      if (!sni) return refuse("tls", "bad_client_hello", "bad SNI: " + sni.error(), true, out);
      target.sni = *sni;
      if (*sni != flow_.host) {
        refusal = TlsBridge::Refusal{std::string(reason::sni_host_mismatch),
                                     "SNI " + sni->to_string() + " on a flow to " + flow_.host.to_string()};
      } else if (auto decision = context_->policy().evaluator().evaluate(*sni, flow_.port); !decision.allowed) {
        refusal = TlsBridge::Refusal{std::string(decision.reason), ""};
      }
    }
    ++context_->counters().flows_tls;
    if (refusal) ++context_->counters().flows_refused;
    out.push_back(Note{"tls", hello.sni_present ? hello.sni : std::string(), "", "", "", ""});
    child_ = std::make_unique<TlsBridge>(context_, target, hello, std::exchange(first_, {}), refusal);
    to_child(Start{}, now, out);
    return;
  }
opaque:
  if (!opaque_allowed_)
    return refuse("opaque", reason::opaque_not_allowed,
                  "only a rule naming host:port lets a non-HTTP protocol through", true, out);
  become(std::make_unique<TunnelLayer>(std::exchange(first_, {}), false), "opaque", now, out);
}

}  // namespace airlock::mitm
