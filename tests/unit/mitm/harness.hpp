// Test support for the MITM: policies, in-memory TLS peers, and a World that runs a
// whole flow's layers between a scripted guest and a scripted origin, with no sockets.
#pragma once

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <doctest/doctest.h>

#include "certs/authority.hpp"
#include "certs/leaf_minter.hpp"
#include "policy/engine.hpp"
#include "policy/host_pattern.hpp"
#include "policy/policy.hpp"
#include "proxy/mitm/context.hpp"
#include "proxy/http/response_parser.hpp"
#include "proxy/mitm/flow_layer.hpp"
#include "proxy/tls/endpoint.hpp"
#include "tests/support/playbook.hpp"

namespace airlock::mitm::testing {

inline policy::HostPattern pattern(const std::string& text) {
  auto p = policy::HostPattern::parse(text);
  REQUIRE(p.ok());
  return *p;
}

inline policy::Host host(const std::string& text) {
  auto h = policy::Host::parse(text);
  REQUIRE(h.ok());
  return *h;
}

// A temporary file removed at scope end.
struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& content) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("airlock-mitm-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::ofstream(path) << content;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

// An upstream origin's TLS identity, from its own CA.
struct Origin {
  certs::CertificateAuthority ca;
  std::unique_ptr<certs::LeafMinter> minter;
  TempFile ca_file;
  certs::SslCtxPtr server_ctx;
  certs::SslCtxPtr server_ctx_h2;

  Origin()
      : ca(certs::CertificateAuthority::create("test origin CA", std::chrono::system_clock::now()).value()),
        minter(std::make_unique<certs::LeafMinter>(ca)),
        ca_file(ca.certificate_pem()),
        server_ctx(tls::make_server_context(false).value()),
        server_ctx_h2(tls::make_server_context(true).value()) {}
};

// The real value of the test secret: 40 bytes, so its placeholder is as long.
inline constexpr std::string_view kReal = "sk-live-0123456789abcdefghijklmnopqrstuv";
inline constexpr std::string_view kShortReal = "tiny-secret-42";

// The bodies of the HTTP/1.1 responses in `wire` (answers to GETs), de-chunked and joined.
inline std::string response_bodies(const std::string& wire) {
  http::ResponseParser parser(http::ParserLimits{}, http::ResponseParser::Options{true, false});
  for (int i = 0; i < 16; ++i) parser.expect_response_to("GET");
  std::vector<http::ResponseEvent> events;
  const auto data = bytes(wire);
  parser.feed(data, events);
  parser.finish(events);
  std::string out;
  for (auto& e : events)
    if (auto* b = std::get_if<http::ResponseBodyEvent>(&e)) out += text(b->data);
  return out;
}

// One flow's layers between a scripted guest and a scripted origin.
struct World {
  Origin origin;
  policy::Policy policy;
  std::shared_ptr<policy::PolicyEngine> engine;
  std::shared_ptr<MitmContext> context;
  std::unique_ptr<TempFile> vm_ca;
  certs::SslCtxPtr guest_ctx;
  std::unique_ptr<Layer> root;
  Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);

  // Guest.
  bool tls = true;
  std::vector<std::string> guest_alpn = {"http/1.1"};
  std::unique_ptr<tls::TlsEndpoint> guest;  // the guest's TLS client
  std::string guest_out;                    // plaintext still to write
  std::string guest_in;                     // plaintext received
  bool guest_closed = false;
  bool guest_reset = false;

  // Origin.
  bool origin_h2 = false;
  bool auto_connect = true;
  std::optional<ConnectFailed> connect_failure;
  int opens = 0;
  bool open_pending = false;
  bool connected = false;
  std::unique_ptr<tls::TlsEndpoint> server;  // the origin's TLS server
  std::string origin_out;
  std::string origin_in;                     // plaintext at the origin, this connection
  bool upstream_closed = false;
  bool upstream_reset = false;
  std::string origin_name;
  // The driver's pool, one connection deep.
  bool pooled = false;
  bool reuse_pending = false;
  int reuses = 0;
  std::shared_ptr<tls::TlsEndpoint> pooled_tls;

  std::vector<audit::Event> events;
  std::vector<Note> notes;

  explicit World(std::function<void(policy::Policy&)> adjust = {}) {
    policy.network.allowed_hosts = {pattern("api.test"), pattern("other.test"), pattern("opaque.test:5432")};
    policy.network.upstream_ca_file = origin.ca_file.path;
    policy::Secret secret;
    secret.name = "API_KEY";
    secret.value = policy::SecretValue(std::string(kReal));
    secret.hosts = {pattern("api.test")};
    policy.network.secrets.push_back(secret);
    policy::Secret small;
    small.name = "SMALL";
    small.value = policy::SecretValue(std::string(kShortReal));
    small.hosts = {pattern("api.test")};
    policy.network.secrets.push_back(small);
    if (adjust) adjust(policy);
    engine = policy::PolicyEngine::create(policy.network, nullptr);
    auto created = MitmContext::create(engine, {});
    REQUIRE_MESSAGE(created.ok(), (created.ok() ? "" : created.error()));
    context = *created;
    vm_ca = std::make_unique<TempFile>(context->ca().certificate_pem());
    guest_ctx = tls::make_client_context(vm_ca->path).value();
  }

  std::string placeholder(const std::string& name = "API_KEY") const {
    return context->guest_env().at(name);
  }

  // Opens the flow as admission would grant it, and starts the guest's handshake.
  void open(const std::string& flow_host, std::uint16_t port, const std::string& sni = "") {
    auto admission = engine->admit(host(flow_host), port);
    REQUIRE(admission.admitted());
    origin_name = flow_host;
    root = std::make_unique<FlowLayer>(context, *admission.grant);
    feed(Start{});
    if (tls) {
      const std::string name = sni.empty() ? flow_host : sni;
      guest = tls::TlsEndpoint::client(guest_ctx.get(), name, name, guest_alpn).value();
      settle();
    }
  }

  void feed(Event event) {
    Commands out;
    root->handle(std::move(event), now, out);
    for (auto& c : out) apply(std::move(c));
  }

  void apply(Command command) {
    if (auto* send = std::get_if<Send>(&command)) {
      if (send->side == Side::guest) {
        if (guest_closed || guest_reset) return;
        if (tls) {
          pending_to_guest_.insert(pending_to_guest_.end(), send->bytes.begin(), send->bytes.end());
        } else {
          guest_in += text(send->bytes);
        }
      } else {
        REQUIRE_MESSAGE(connected, "a send upstream with no connection");
        if (tls)
          pending_to_origin_.insert(pending_to_origin_.end(), send->bytes.begin(), send->bytes.end());
        else
          origin_in += text(send->bytes);
      }
    } else if (auto* close = std::get_if<Close>(&command)) {
      if (close->side == Side::guest) {
        (close->reset ? guest_reset : guest_closed) = true;
      } else {
        (close->reset ? upstream_reset : upstream_closed) = true;
        connected = false;
        pooled = false;
        server.reset();
      }
    } else if (auto* open = std::get_if<Open>(&command)) {
      if (open->reusable && pooled) {
        // The driver's pool: the same origin connection, handed back.
        pooled = false;
        ++reuses;
        reuse_pending = true;
        return;
      }
      ++opens;
      open_pending = true;
    } else if (auto* release = std::get_if<Release>(&command)) {
      pooled = connected;
      pooled_tls = release->tls;
    } else if (auto* emit = std::get_if<Emit>(&command)) {
      events.push_back(std::move(emit->event));
    } else if (auto* note = std::get_if<Note>(&command)) {
      notes.push_back(std::move(*note));
    }
  }

  // Moves bytes between the three parties until nothing changes.
  void settle() {
    for (int round = 0; round < 200; ++round) {
      bool progress = false;
      if (reuse_pending) {
        reuse_pending = false;
        progress = true;
        std::string alpn = pooled_tls ? pooled_tls->alpn() : std::string();
        feed(Connected{alpn, true, std::move(pooled_tls)});
      }
      if (open_pending && auto_connect) {
        open_pending = false;
        progress = true;
        if (connect_failure) {
          feed(*connect_failure);
        } else {
          connected = true;
          upstream_closed = upstream_reset = false;
          origin_in.clear();
          if (tls) {
            server = tls::TlsEndpoint::server(origin_h2 ? origin.server_ctx_h2.get() : origin.server_ctx.get()).value();
            auto leaf = origin.minter->leaf_for(origin_name, std::chrono::system_clock::now()).value();
            origin_leaf_ = leaf;
            REQUIRE(server->set_certificate(leaf->certificate.get(), origin.minter->leaf_key()).ok());
          }
          feed(Connected{});
        }
      }
      if (root && root->pending(Side::guest)) {
        feed(Drained{Side::guest});
        progress = true;
      }
      if (tls && guest) progress = pump_guest() || progress;
      if (tls && server) progress = pump_origin() || progress;
      if (!progress) break;
    }
  }

  void guest_send(const std::string& plain) {
    if (tls) {
      guest_out += plain;
    } else {
      feed(DataIn{Side::guest, bytes(plain)});
    }
    settle();
  }
  void origin_send(const std::string& plain) {
    if (tls) {
      origin_out += plain;
    } else {
      feed(DataIn{Side::upstream, bytes(plain)});
    }
    settle();
  }
  void guest_eof() {
    if (tls && guest) {
      guest->close_notify();
      auto c = guest->take_ciphertext();
      if (!c.empty()) feed(DataIn{Side::guest, std::move(c)});
    }
    feed(ClosedIn{Side::guest, false, ""});
    settle();
  }
  void origin_eof() {
    if (pooled) {
      // Closed while pooled: the pool evicts it; the layers never hear.
      pooled = false;
      pooled_tls.reset();
      connected = false;
      server.reset();
      upstream_closed = true;
      return;
    }
    if (tls && server) {
      server->close_notify();
      auto c = server->take_ciphertext();
      if (!c.empty()) feed(DataIn{Side::upstream, std::move(c)});
    }
    connected = false;
    server.reset();
    feed(ClosedIn{Side::upstream, false, ""});
    settle();
  }

  std::vector<audit::HttpRequest> requests() const {
    std::vector<audit::HttpRequest> out;
    for (const auto& e : events)
      if (const auto* r = std::get_if<audit::HttpRequest>(&e)) out.push_back(*r);
    return out;
  }
  bool guest_saw_value() const {
    return guest_in.find(kReal) != std::string::npos || guest_in.find(kShortReal) != std::string::npos;
  }

 private:
  bool pump_guest() {
    bool progress = false;
    if (!pending_to_guest_.empty()) {
      const std::size_t n = guest->feed_ciphertext(pending_to_guest_);
      pending_to_guest_.erase(pending_to_guest_.begin(), pending_to_guest_.begin() + static_cast<std::ptrdiff_t>(n));
      progress = n > 0;
    }
    const auto state = guest->step();
    if (state == tls::TlsEndpoint::State::established && !guest_out.empty()) {
      const std::size_t n = guest->write_plaintext(bytes(guest_out));
      guest_out.erase(0, n);
      progress = progress || n > 0;
    }
    Bytes plain;
    while (guest->read_plaintext(plain, 1 << 16) > 0) progress = true;
    guest_in += text(plain);
    if (auto c = guest->take_ciphertext(); !c.empty()) {
      feed(DataIn{Side::guest, std::move(c)});
      progress = true;
    }
    return progress;
  }
  bool pump_origin() {
    bool progress = false;
    if (!pending_to_origin_.empty()) {
      const std::size_t n = server->feed_ciphertext(pending_to_origin_);
      pending_to_origin_.erase(pending_to_origin_.begin(), pending_to_origin_.begin() + static_cast<std::ptrdiff_t>(n));
      progress = n > 0;
    }
    const auto state = server->step();
    if (state == tls::TlsEndpoint::State::established && !origin_out.empty()) {
      const std::size_t n = server->write_plaintext(bytes(origin_out));
      origin_out.erase(0, n);
      progress = progress || n > 0;
    }
    Bytes plain;
    while (server->read_plaintext(plain, 1 << 16) > 0) progress = true;
    origin_in += text(plain);
    if (auto c = server->take_ciphertext(); !c.empty() && connected) {
      feed(DataIn{Side::upstream, std::move(c)});
      progress = true;
    }
    return progress;
  }

  Bytes pending_to_guest_;
  Bytes pending_to_origin_;
  std::shared_ptr<const certs::LeafMinter::Leaf> origin_leaf_;
};

}  // namespace airlock::mitm::testing
