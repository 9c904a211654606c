// MitmContext: what every intercepted flow of one VM (or one standalone proxy) shares.
//
// The VM's CA (fresh, in memory; only its certificate leaves), the leaf minter and its
// cache, the TLS contexts for both sides, the VM's one PolicyEngine (evaluator, secret
// store, policy script) and the request judge over it. Built once at setup, where failing
// is fine (a bad upstream_ca_file): create() returns the error for the user.
// Single-threaded like the engine that uses it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "certs/authority.hpp"
#include "certs/leaf_minter.hpp"
#include "certs/openssl_ptr.hpp"
#include "common/result.hpp"
#include "policy/engine.hpp"
#include "proxy/mitm/judge.hpp"

namespace airlock::mitm {

// Where the guest finds the VM's CA (written by guest-init) and the variables that point
// every common TLS stack at the system bundle that includes it.
inline constexpr std::string_view kGuestCaFile = "/usr/local/share/ca-certificates/airlock-vm-ca.crt";
inline constexpr std::string_view kGuestBundle = "/etc/ssl/certs/ca-certificates.crt";

// What the MITM's layers did across every flow of the VM (for the stopped event).
struct Counters {
  std::uint64_t flows_tls = 0;
  std::uint64_t flows_http = 0;
  std::uint64_t flows_opaque = 0;
  std::uint64_t flows_refused = 0;       // at classification or by SNI
  std::uint64_t guest_tls_failed = 0;
  std::uint64_t upstream_tls_failed = 0;
  std::uint64_t guest_h2 = 0;            // guest connections that chose HTTP/2
  std::uint64_t upstream_h2 = 0;
  std::uint64_t requests = 0;
  std::uint64_t requests_refused = 0;
  std::uint64_t requests_failed = 0;     // cut short: upstream, guest, connect
  std::uint64_t upstream_opens = 0;
  std::uint64_t retries = 0;
  std::uint64_t responses_scrubbed = 0;
  std::uint64_t responses_cut = 0;
  std::uint64_t websockets = 0;
};

class MitmContext {
 public:
  struct Options {
    std::string ca_common_name = "airlock VM CA";
    std::size_t leaf_cache = 1024;
    bool http2 = true;  // offer h2 to guests that offer it, and upstream for their requests
    // Request bodies that need a secret swapped under a Content-Length, and small
    // scrubbed responses, are held whole up to this size to re-count their length.
    std::size_t max_buffered_body = 1u << 20;
    // Idle HTTP/1.1 upstream connections go back to the driver's pool (Release).
    bool pool_upstreams = true;
  };

  static Result<std::shared_ptr<MitmContext>> create(std::shared_ptr<policy::PolicyEngine> policy,
                                                     Options options);

  const certs::CertificateAuthority& ca() const { return ca_; }
  certs::LeafMinter& minter() { return *minter_; }
  SSL_CTX* server_context() const { return server_ctx_.get(); }
  SSL_CTX* client_context() const { return client_ctx_.get(); }
  const policy::PolicyEngine& policy() const { return *policy_; }
  const std::shared_ptr<policy::PolicyEngine>& policy_ptr() const { return policy_; }
  const RequestJudge& judge() const { return judge_; }
  const Options& options() const { return options_; }
  // Shared by every flow's layers; single-threaded like the rest.
  Counters& counters() const { return counters_; }
  nlohmann::json counters_json() const;

  // The variables every guest command gets: secret placeholders under their names and
  // the CA bundle for curl, Python requests, OpenSSL and Node.
  std::map<std::string, std::string> guest_env() const;

  MitmContext(const MitmContext&) = delete;
  MitmContext& operator=(const MitmContext&) = delete;

 private:
  MitmContext(certs::CertificateAuthority ca, std::shared_ptr<policy::PolicyEngine> policy, Options options);

  Options options_;
  certs::CertificateAuthority ca_;
  std::shared_ptr<policy::PolicyEngine> policy_;
  RequestJudge judge_;
  std::unique_ptr<certs::LeafMinter> minter_;
  certs::SslCtxPtr server_ctx_;
  certs::SslCtxPtr client_ctx_;
  mutable Counters counters_;
};

}  // namespace airlock::mitm
