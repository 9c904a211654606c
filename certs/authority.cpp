// The per-VM CA; see authority.hpp.
#include "certs/authority.hpp"

#include <openssl/pem.h>

#include "certs/x509_builder.hpp"

namespace airlock::certs {

// Common names longer than this are refused by X.509 (ub-common-name).
constexpr std::size_t kMaxCommonName = 64;

Result<CertificateAuthority> CertificateAuthority::create(std::string_view common_name,
                                                          std::chrono::system_clock::time_point now) {
  if (common_name.empty() || common_name.size() > kMaxCommonName)
    return Error{"CA common name must be 1 to 64 bytes"};
  auto key = generate_p256_key();
  if (!key) return Error{key.error()};
  auto certificate = new_certificate(key->get(), now);
  if (!certificate) return Error{certificate.error()};
  X509* cert = certificate->get();

  X509_NAME* subject = X509_get_subject_name(cert);
  if (!add_name_entry(subject, "O", "airlock") || !add_name_entry(subject, "CN", common_name) ||
      X509_set_issuer_name(cert, subject) != 1)
    return Error{openssl_error("CA name")};
  if (!add_extension(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !add_extension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_extension(cert, cert, NID_subject_key_identifier, "hash"))
    return Error{openssl_error("CA extensions")};
  auto signed_ok = sign_sha256(cert, key->get());
  if (!signed_ok) return Error{signed_ok.error()};
  return CertificateAuthority(std::move(*certificate), std::move(*key));
}

std::string CertificateAuthority::certificate_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), certificate_.get()) != 1) return {};
  char* data = nullptr;
  long length = BIO_ctrl(bio.get(), BIO_CTRL_INFO, 0, &data);  // BIO_get_mem_data
  if (length <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<std::size_t>(length));
}

}  // namespace airlock::certs
