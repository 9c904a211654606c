// Fuzzes the MITM's HTTP path end to end (sans-IO): guest bytes and upstream bytes,
// interleaved in chunks the input chooses, through HttpPipeline with a judge, a secret
// store and body substitution. Nothing the guest or the upstream sends may crash it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "policy/evaluator.hpp"
#include "policy/secret_store.hpp"
#include "proxy/mitm/http_pipeline.hpp"

namespace {

using namespace airlock;

struct Fixture {
  policy::NetworkPolicy network;
  std::unique_ptr<policy::Evaluator> evaluator;
  std::unique_ptr<policy::SecretStore> secrets;
  std::unique_ptr<mitm::RequestJudge> judge;

  Fixture() {
    network.allowed_hosts = {*policy::HostPattern::parse("api.test")};
    policy::Secret secret;
    secret.name = "TOKEN";
    secret.value = policy::SecretValue("real-token-value");
    secret.placeholder = "PLACEHOLDER_TOKEN_01";
    secret.hosts = {*policy::HostPattern::parse("api.test")};
    network.secrets.push_back(secret);
    evaluator = std::make_unique<policy::Evaluator>(network);
    secrets = std::make_unique<policy::SecretStore>(network.secrets);
    judge = std::make_unique<mitm::RequestJudge>(*evaluator, *secrets, nullptr);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  if (size < 3) return 0;
  const bool tls = data[0] & 1;
  const std::size_t chunk = 1 + data[1] % 64;
  // The rest splits at the first 0xff into guest bytes and upstream bytes.
  std::span<const std::uint8_t> rest(data + 2, size - 2);
  std::size_t split = 0;
  while (split < rest.size() && rest[split] != 0xff) ++split;
  std::span<const std::uint8_t> guest = rest.subspan(0, split);
  std::span<const std::uint8_t> upstream = split < rest.size() ? rest.subspan(split + 1)
                                                               : std::span<const std::uint8_t>{};
  mitm::FlowTarget flow;
  flow.host = *policy::Host::parse("api.test");
  flow.port = tls ? 443 : 80;
  flow.rule = "allowed_hosts: api.test";
  flow.tls = tls;
  if (tls) flow.sni = flow.host;
  mitm::HttpPipeline pipeline(*fixture.judge, *fixture.secrets, flow);
  const auto now = mitm::Clock::now();
  std::vector<std::uint8_t> pending;
  std::size_t g = 0, u = 0;
  while (g < guest.size() || u < upstream.size()) {
    if (g < guest.size()) {
      const std::size_t n = std::min(chunk, guest.size() - g);
      pending.insert(pending.end(), guest.begin() + static_cast<std::ptrdiff_t>(g),
                     guest.begin() + static_cast<std::ptrdiff_t>(g + n));
      g += n;
      const std::size_t taken = pipeline.on_guest(pending, now);
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(taken));
    }
    if (u < upstream.size()) {
      const std::size_t n = std::min(chunk, upstream.size() - u);
      pipeline.on_upstream(upstream.subspan(u, n), now);
      u += n;
    }
    pipeline.to_guest().clear();
    pipeline.to_upstream().clear();
    pipeline.events().clear();
  }
  pipeline.on_guest_eof(now);
  pipeline.on_upstream_eof(now);
  return 0;
}
