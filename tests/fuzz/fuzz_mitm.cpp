// Fuzzes the MITM's HTTP layer end to end (sans-IO): guest bytes and origin bytes,
// interleaved in chunks the input chooses, over either protocol on either side, with a
// judge, secrets, body substitution and response scrubbing. Nothing the guest or the
// origin sends may crash it, and two properties must hold whatever they send:
//   - on a flow to the secret's host, the guest never receives the secret's real value
//     (the origin may echo it in any shape; the scrubber must catch the raw bytes);
//   - on a flow to another host, the origin never receives the placeholder or the value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "policy/engine.hpp"
#include "proxy/http/h1_codec.hpp"
#include "proxy/http2/h2_codec.hpp"
#include "proxy/mitm/context.hpp"
#include "proxy/mitm/http_layer.hpp"

namespace {

using namespace airlock;

constexpr std::string_view kReal = "real-token-value-0123456789";
constexpr std::string_view kPlaceholder = "PLACEHOLDER_TOKEN_01";

struct Fixture {
  std::shared_ptr<mitm::MitmContext> context;
  Fixture() {
    policy::NetworkPolicy network;
    network.allowed_hosts = {*policy::HostPattern::parse("api.test"), *policy::HostPattern::parse("other.test")};
    policy::Secret secret;
    secret.name = "TOKEN";
    secret.value = policy::SecretValue(std::string(kReal));
    secret.placeholder = std::string(kPlaceholder);
    secret.hosts = {*policy::HostPattern::parse("api.test")};
    network.secrets.push_back(secret);
    context = *mitm::MitmContext::create(policy::PolicyEngine::create(network, nullptr), {});
  }
};

bool contains(const std::vector<std::uint8_t>& bytes, std::string_view needle) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()).find(needle) !=
         std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  if (size < 3) return 0;
  const bool secret_host = data[0] & 1;
  const bool guest_h2 = data[0] & 2;
  const bool upstream_h2 = data[0] & 4;
  const bool close_early = data[0] & 8;
  const std::size_t chunk = 1 + data[1] % 64;
  // The rest splits at the first 0xff into guest bytes and origin bytes.
  std::span<const std::uint8_t> rest(data + 2, size - 2);
  std::size_t split = 0;
  while (split < rest.size() && rest[split] != 0xff) ++split;
  std::span<const std::uint8_t> guest = rest.subspan(0, split);
  std::span<const std::uint8_t> origin = split < rest.size() ? rest.subspan(split + 1) : std::span<const std::uint8_t>{};

  mitm::FlowTarget flow;
  flow.host = *policy::Host::parse(secret_host ? "api.test" : "other.test");
  flow.port = 443;
  flow.tls = true;
  flow.sni = flow.host;
  std::unique_ptr<http::GuestCodec> codec;
  if (guest_h2)
    codec = std::make_unique<http2::H2GuestCodec>();
  else
    codec = std::make_unique<http::H1GuestCodec>();
  mitm::HttpLayer layer(fixture.context, flow, std::move(codec));
  const auto now = mitm::Clock::now();
  bool connected = false;
  bool upstream_open = false;

  auto check = [&](mitm::Commands& out) {
    for (auto& c : out) {
      if (auto* send = std::get_if<mitm::Send>(&c)) {
        if (send->side == mitm::Side::guest && secret_host && contains(send->bytes, kReal)) std::abort();
        if (send->side == mitm::Side::upstream && !secret_host &&
            (contains(send->bytes, kReal) || contains(send->bytes, kPlaceholder)))
          std::abort();
      } else if (std::holds_alternative<mitm::Open>(c)) {
        upstream_open = true;
      } else if (auto* close = std::get_if<mitm::Close>(&c); close && close->side == mitm::Side::upstream) {
        connected = false;
        upstream_open = false;
      }
    }
    out.clear();
  };

  mitm::Commands out;
  layer.handle(mitm::Start{}, now, out);
  check(out);
  std::size_t g = 0, u = 0;
  while (g < guest.size() || u < origin.size()) {
    if (g < guest.size()) {
      const std::size_t n = std::min(chunk, guest.size() - g);
      layer.handle(mitm::DataIn{mitm::Side::guest, std::vector<std::uint8_t>(guest.begin() + static_cast<std::ptrdiff_t>(g),
                                                                              guest.begin() + static_cast<std::ptrdiff_t>(g + n))},
                   now, out);
      g += n;
      check(out);
    }
    if (upstream_open && !connected) {
      connected = true;
      layer.handle(mitm::Connected{upstream_h2 ? "h2" : "http/1.1", false, nullptr}, now, out);
      check(out);
    }
    if (connected && u < origin.size()) {
      const std::size_t n = std::min(chunk, origin.size() - u);
      layer.handle(mitm::DataIn{mitm::Side::upstream, std::vector<std::uint8_t>(origin.begin() + static_cast<std::ptrdiff_t>(u),
                                                                                 origin.begin() + static_cast<std::ptrdiff_t>(u + n))},
                   now, out);
      u += n;
      check(out);
    } else if (!connected) {
      u = origin.size();
    }
    if (layer.pending(mitm::Side::guest)) {
      layer.handle(mitm::Drained{mitm::Side::guest}, now, out);
      check(out);
    }
  }
  if (close_early) {
    layer.handle(mitm::ClosedIn{mitm::Side::upstream, false, ""}, now, out);
    check(out);
  }
  layer.handle(mitm::ClosedIn{mitm::Side::guest, false, ""}, now, out);
  check(out);
  layer.handle(mitm::ClosedIn{mitm::Side::guest, true, ""}, now, out);
  check(out);
  return 0;
}
