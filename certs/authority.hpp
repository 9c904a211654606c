// CertificateAuthority: the per-VM CA that signs the leaves the TLS MITM presents.
//
// Theory of operation. Each VM gets its own CA, created when the VM starts and dropped
// with it: an EC P-256 key that exists only in this process's memory (never written
// out), and a self-signed X.509 v3 certificate, O=airlock, CN=<common name>, valid from
// an hour ago for 30 days. The certificate is CA:TRUE with pathlen:0 (it may sign
// leaves, never another CA) and its key usage is limited to certificate and CRL signing.
// Only the certificate (PEM) leaves the process: it is installed in the guest's trust
// store, so the guest trusts leaves minted for this VM and no other VM's.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "certs/openssl_ptr.hpp"
#include "common/result.hpp"

namespace airlock::certs {

class CertificateAuthority {
 public:
  // A new CA with a fresh key; Error when OpenSSL fails (no randomness, ...).
  static Result<CertificateAuthority> create(std::string_view common_name,
                                             std::chrono::system_clock::time_point now);

  CertificateAuthority(CertificateAuthority&&) noexcept = default;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept = default;
  CertificateAuthority(const CertificateAuthority&) = delete;
  CertificateAuthority& operator=(const CertificateAuthority&) = delete;

  // The certificate in PEM, for the guest's trust store.
  std::string certificate_pem() const;

  // Borrowed handles, valid while this object lives.
  X509* certificate() const { return certificate_.get(); }
  EVP_PKEY* key() const { return key_.get(); }

 private:
  CertificateAuthority(X509Ptr certificate, EvpPkeyPtr key)
      : certificate_(std::move(certificate)), key_(std::move(key)) {}

  X509Ptr certificate_;
  EvpPkeyPtr key_;
};

}  // namespace airlock::certs
