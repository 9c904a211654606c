// CertificateAuthority: a self-signed CA:TRUE certificate with the promised fields.
#include <doctest/doctest.h>

#include <chrono>

#include <openssl/pem.h>

#include "certs/authority.hpp"

using namespace airlock::certs;

namespace {

std::string subject_field(X509* certificate, int nid) {
  X509_NAME* name = X509_get_subject_name(certificate);
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

}  // namespace

TEST_CASE("the CA is a self-signed CA:TRUE certificate for its name") {
  auto now = std::chrono::system_clock::now();
  auto ca = CertificateAuthority::create("airlock vm-1 CA", now);
  REQUIRE(ca.ok());
  X509* cert = ca->certificate();
  REQUIRE(cert != nullptr);
  CHECK(X509_get_version(cert) == X509_VERSION_3);
  CHECK(X509_check_ca(cert) == 1);
  CHECK(X509_verify(cert, ca->key()) == 1);  // signed by its own key
  CHECK(X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0);
  CHECK(subject_field(cert, NID_commonName) == "airlock vm-1 CA");
  CHECK(subject_field(cert, NID_organizationName) == "airlock");
  CHECK(EVP_PKEY_is_a(ca->key(), "EC") == 1);
  CHECK(EVP_PKEY_get_bits(ca->key()) == 256);

  // basicConstraints critical, pathlen 0; keyUsage critical, cert and CRL signing only.
  int critical = -1;
  auto* constraints =
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &critical, nullptr));
  REQUIRE(constraints != nullptr);
  CHECK(critical == 1);
  CHECK(constraints->ca != 0);
  CHECK(ASN1_INTEGER_get(constraints->pathlen) == 0);
  BASIC_CONSTRAINTS_free(constraints);
  CHECK(X509_get_key_usage(cert) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK(X509_get0_subject_key_id(cert) != nullptr);

  // Valid from an hour ago for 30 days.
  std::time_t before = std::chrono::system_clock::to_time_t(now - std::chrono::minutes(59));
  std::time_t after = std::chrono::system_clock::to_time_t(now + std::chrono::hours(24 * 30 - 1));
  std::time_t too_late = std::chrono::system_clock::to_time_t(now + std::chrono::hours(24 * 30 + 1));
  CHECK(X509_cmp_time(X509_get0_notBefore(cert), &before) < 0);
  CHECK(X509_cmp_time(X509_get0_notAfter(cert), &after) > 0);
  CHECK(X509_cmp_time(X509_get0_notAfter(cert), &too_late) < 0);

  // A positive 16-byte serial.
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  CHECK(ASN1_STRING_type(serial) == V_ASN1_INTEGER);
  CHECK(ASN1_STRING_length(serial) == 16);
}

TEST_CASE("the PEM reads back as the same certificate") {
  auto ca = CertificateAuthority::create("ca", std::chrono::system_clock::now());
  REQUIRE(ca.ok());
  std::string pem = ca->certificate_pem();
  CHECK(pem.rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr read(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(read);
  CHECK(X509_cmp(read.get(), ca->certificate()) == 0);
}

TEST_CASE("two CAs have different keys and serials") {
  auto now = std::chrono::system_clock::now();
  auto first = CertificateAuthority::create("ca", now);
  auto second = CertificateAuthority::create("ca", now);
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(EVP_PKEY_eq(first->key(), second->key()) != 1);
  CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(first->certificate()),
                         X509_get0_serialNumber(second->certificate())) != 0);
  CHECK(X509_verify(second->certificate(), first->key()) != 1);
}

TEST_CASE("a CA name must be 1 to 64 bytes") {
  auto now = std::chrono::system_clock::now();
  CHECK_FALSE(CertificateAuthority::create("", now).ok());
  CHECK_FALSE(CertificateAuthority::create(std::string(65, 'a'), now).ok());
  CHECK(CertificateAuthority::create(std::string(64, 'a'), now).ok());
}

TEST_CASE("a CA moves without losing its key") {
  auto ca = CertificateAuthority::create("ca", std::chrono::system_clock::now());
  REQUIRE(ca.ok());
  EVP_PKEY* key = ca->key();
  CertificateAuthority moved = std::move(*ca);
  CHECK(moved.key() == key);
  CHECK(X509_verify(moved.certificate(), moved.key()) == 1);
}
