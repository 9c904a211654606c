// Small steps shared by the CA and the leaf minter when they build certificates: key
// generation, serials, validity, names and extensions. Each step reports failure with
// OpenSSL's reason text; none throws.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "certs/openssl_ptr.hpp"
#include "common/result.hpp"

namespace airlock::certs {

using SystemClock = std::chrono::system_clock;

// Certificates start an hour in the past so a guest whose clock lags still accepts them.
inline constexpr std::chrono::hours kBackdate{1};
inline constexpr std::chrono::hours kValidity{24 * 30};

// A fresh EC P-256 key pair.
Result<EvpPkeyPtr> generate_p256_key();

// A new certificate: version 3, a random positive 128-bit serial, the given public key,
// notBefore now-kBackdate and notAfter now+kValidity.
Result<X509Ptr> new_certificate(EVP_PKEY* public_key, SystemClock::time_point now);

// Appends an attribute (e.g. "CN") to `name`; false when OpenSSL refuses it.
bool add_name_entry(X509_NAME* name, const char* field, std::string_view value);

// Adds an extension in OpenSSL's config syntax ("critical,CA:TRUE"), resolved against
// `issuer` (for the authority key identifier) and `subject` itself.
bool add_extension(X509* subject, X509* issuer, int nid, const char* value);

// Signs with SHA-256; Error carries OpenSSL's reason.
Result<bool> sign_sha256(X509* certificate, EVP_PKEY* key);

}  // namespace airlock::certs
