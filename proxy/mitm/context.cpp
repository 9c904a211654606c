// Shared MITM state of one VM; see context.hpp.
#include "proxy/mitm/context.hpp"

#include "proxy/tls/endpoint.hpp"

namespace airlock::mitm {

MitmContext::MitmContext(certs::CertificateAuthority ca, std::shared_ptr<policy::PolicyEngine> policy,
                         Options options)
    : options_(std::move(options)), ca_(std::move(ca)), policy_(std::move(policy)), judge_(*policy_) {}

Result<std::shared_ptr<MitmContext>> MitmContext::create(std::shared_ptr<policy::PolicyEngine> policy,
                                                         Options options) {
  if (!policy) return Error{"no policy"};
  auto ca = certs::CertificateAuthority::create(options.ca_common_name, std::chrono::system_clock::now());
  if (!ca) return Error{"cannot create the VM's CA: " + ca.error()};
  std::shared_ptr<MitmContext> context(new MitmContext(std::move(*ca), std::move(policy), options));
  context->minter_ = std::make_unique<certs::LeafMinter>(context->ca_, options.leaf_cache);
  auto server = tls::make_server_context(options.http2);
  if (!server) return Error{"cannot set up TLS: " + server.error()};
  context->server_ctx_ = std::move(*server);
  auto client = tls::make_client_context(context->policy_->network().upstream_ca_file);
  if (!client) return Error{"cannot set up upstream TLS: " + client.error()};
  context->client_ctx_ = std::move(*client);
  return context;
}

std::map<std::string, std::string> MitmContext::guest_env() const {
  std::map<std::string, std::string> env = policy_->secrets().guest_env();
  const std::string bundle(kGuestBundle);
  env["SSL_CERT_FILE"] = bundle;
  env["REQUESTS_CA_BUNDLE"] = bundle;
  env["CURL_CA_BUNDLE"] = bundle;
  env["NODE_EXTRA_CA_CERTS"] = std::string(kGuestCaFile);
  env["GIT_SSL_CAINFO"] = bundle;
  env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = bundle;  // gRPC's own TLS ignores the others
  return env;
}

nlohmann::json MitmContext::counters_json() const {
  const Counters& c = counters_;
  return {{"flows_tls", c.flows_tls},
          {"flows_http", c.flows_http},
          {"flows_opaque", c.flows_opaque},
          {"flows_refused", c.flows_refused},
          {"guest_tls_failed", c.guest_tls_failed},
          {"upstream_tls_failed", c.upstream_tls_failed},
          {"guest_h2", c.guest_h2},
          {"upstream_h2", c.upstream_h2},
          {"requests", c.requests},
          {"requests_refused", c.requests_refused},
          {"requests_failed", c.requests_failed},
          {"upstream_opens", c.upstream_opens},
          {"retries", c.retries},
          {"responses_scrubbed", c.responses_scrubbed},
          {"responses_cut", c.responses_cut},
          {"websockets", c.websockets}};
}

}  // namespace airlock::mitm
