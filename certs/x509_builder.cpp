// Certificate building steps; see x509_builder.hpp.
#include "certs/x509_builder.hpp"

#include <array>
#include <ctime>

#include <openssl/rand.h>

namespace airlock::certs {

Result<EvpPkeyPtr> generate_p256_key() {
  EvpPkeyCtxPtr context(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!context || EVP_PKEY_keygen_init(context.get()) != 1 ||
      EVP_PKEY_CTX_set_group_name(context.get(), "P-256") != 1)
    return Error{openssl_error("EC key setup failed")};
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_generate(context.get(), &key) != 1) return Error{openssl_error("EC key generation failed")};
  return EvpPkeyPtr(key);
}

Result<X509Ptr> new_certificate(EVP_PKEY* public_key, SystemClock::time_point now) {
  X509Ptr certificate(X509_new());
  if (!certificate) return Error{openssl_error("X509_new failed")};

  std::array<unsigned char, 16> serial_bytes{};
  if (RAND_bytes(serial_bytes.data(), static_cast<int>(serial_bytes.size())) != 1)
    return Error{openssl_error("no randomness for a serial")};
  serial_bytes[0] &= 0x7F;  // positive in DER
  serial_bytes[0] |= 0x40;  // and never shorter than 16 bytes, never zero
  BignumPtr serial_number(BN_bin2bn(serial_bytes.data(), static_cast<int>(serial_bytes.size()), nullptr));
  if (!serial_number) return Error{openssl_error("serial")};
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(serial_number.get(), nullptr));
  if (!serial) return Error{openssl_error("serial")};

  std::time_t not_before = SystemClock::to_time_t(now - kBackdate);
  std::time_t not_after = SystemClock::to_time_t(now + kValidity);
  if (X509_set_version(certificate.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(certificate.get(), serial.get()) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(certificate.get()), not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(certificate.get()), not_after) == nullptr ||
      X509_set_pubkey(certificate.get(), public_key) != 1)
    return Error{openssl_error("certificate fields")};
  return certificate;
}

bool add_name_entry(X509_NAME* name, const char* field, std::string_view value) {
  return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(value.data()),
                                    static_cast<int>(value.size()), -1, 0) == 1;
}

bool add_extension(X509* subject, X509* issuer, int nid, const char* value) {
  X509V3_CTX context{};
  X509V3_set_ctx(&context, issuer, subject, nullptr, nullptr, 0);
  X509ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
  return extension && X509_add_ext(subject, extension.get(), -1) == 1;
}

Result<bool> sign_sha256(X509* certificate, EVP_PKEY* key) {
  if (X509_sign(certificate, key, EVP_sha256()) <= 0) return Error{openssl_error("signing failed")};
  return true;
}

}  // namespace airlock::certs
