// MitmContext: what every intercepted flow of one VM (or one standalone proxy) shares.
//
// The VM's CA (fresh, in memory; only its certificate leaves), the leaf minter and its
// cache, the TLS contexts for both sides, the policy evaluator, the secret store with
// this VM's placeholders, the policy script, and the judge built over them. Built once at
// setup, where failing is fine (a bad upstream_ca_file, a script that doesn't load):
// create() returns the error for the user. Single-threaded like the engine that uses it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "certs/authority.hpp"
#include "certs/leaf_minter.hpp"
#include "certs/openssl_ptr.hpp"
#include "common/result.hpp"
#include "policy/evaluator.hpp"
#include "policy/policy.hpp"
#include "policy/script.hpp"
#include "policy/secret_store.hpp"
#include "proxy/mitm/judge.hpp"

namespace airlock::mitm {

// Where the guest finds the VM's CA (written by guest-init) and the variables that point
// every common TLS stack at the system bundle that includes it.
inline constexpr std::string_view kGuestCaFile = "/usr/local/share/ca-certificates/airlock-vm-ca.crt";
inline constexpr std::string_view kGuestBundle = "/etc/ssl/certs/ca-certificates.crt";

class MitmContext {
 public:
  struct Options {
    std::string ca_common_name = "airlock VM CA";
    std::size_t leaf_cache = 1024;
    std::chrono::milliseconds classify_timeout{1000};
  };

  static Result<std::shared_ptr<MitmContext>> create(const policy::NetworkPolicy& network,
                                                     Options options);

  const certs::CertificateAuthority& ca() const { return ca_; }
  certs::LeafMinter& minter() { return *minter_; }
  SSL_CTX* server_context() const { return server_ctx_.get(); }
  SSL_CTX* client_context() const { return client_ctx_.get(); }
  const policy::Evaluator& evaluator() const { return evaluator_; }
  const policy::SecretStore& secrets() const { return secrets_; }
  const RequestJudge& judge() const { return *judge_; }
  const Options& options() const { return options_; }

  // The variables every guest command gets: secret placeholders under their names and
  // the CA bundle for curl, Python requests, OpenSSL and Node.
  std::map<std::string, std::string> guest_env() const;

  MitmContext(const MitmContext&) = delete;
  MitmContext& operator=(const MitmContext&) = delete;

 private:
  MitmContext(certs::CertificateAuthority ca, const policy::NetworkPolicy& network, Options options);

  Options options_;
  certs::CertificateAuthority ca_;
  std::unique_ptr<certs::LeafMinter> minter_;
  certs::SslCtxPtr server_ctx_;
  certs::SslCtxPtr client_ctx_;
  policy::Evaluator evaluator_;
  policy::SecretStore secrets_;
  std::unique_ptr<policy::PolicyScript> script_;
  std::unique_ptr<RequestJudge> judge_;
};

}  // namespace airlock::mitm
