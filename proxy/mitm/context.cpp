// Shared MITM state of one VM; see context.hpp.
#include "proxy/mitm/context.hpp"

#include "proxy/tls/endpoint.hpp"

namespace airlock::mitm {

MitmContext::MitmContext(certs::CertificateAuthority ca, const policy::NetworkPolicy& network,
                         Options options)
    : options_(std::move(options)),
      ca_(std::move(ca)),
      evaluator_(network),
      secrets_(network.secrets) {}

Result<std::shared_ptr<MitmContext>> MitmContext::create(const policy::NetworkPolicy& network,
                                                         Options options) {
  auto ca = certs::CertificateAuthority::create(options.ca_common_name,
                                                std::chrono::system_clock::now());
  if (!ca) return Error{"cannot create the VM's CA: " + ca.error()};
  std::shared_ptr<MitmContext> context(new MitmContext(std::move(*ca), network, options));
  context->minter_ = std::make_unique<certs::LeafMinter>(context->ca_, options.leaf_cache);
  auto server = tls::make_server_context();
  if (!server) return Error{"cannot set up TLS: " + server.error()};
  context->server_ctx_ = std::move(*server);
  auto client = tls::make_client_context(network.upstream_ca_file);
  if (!client) return Error{"cannot set up upstream TLS: " + client.error()};
  context->client_ctx_ = std::move(*client);
  if (network.policy_script) {
    auto script = policy::PolicyScript::load_file(*network.policy_script);
    if (!script) return Error{script.error()};
    context->script_ = std::move(*script);
  }
  context->judge_ = std::make_unique<RequestJudge>(context->evaluator_, context->secrets_,
                                                   context->script_.get());
  return context;
}

std::map<std::string, std::string> MitmContext::guest_env() const {
  std::map<std::string, std::string> env = secrets_.guest_env();
  const std::string bundle(kGuestBundle);
  env["SSL_CERT_FILE"] = bundle;
  env["REQUESTS_CA_BUNDLE"] = bundle;
  env["CURL_CA_BUNDLE"] = bundle;
  env["NODE_EXTRA_CA_CERTS"] = std::string(kGuestCaFile);
  env["GIT_SSL_CAINFO"] = bundle;
  return env;
}

}  // namespace airlock::mitm
