// LeafMinter: leaves chain to the CA for their name or address; the LRU cache.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "certs/authority.hpp"
#include "certs/leaf_minter.hpp"

using namespace airlock::certs;

namespace {

struct Fixture {
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  CertificateAuthority ca = CertificateAuthority::create("test CA", now).value();
};

// X509_verify_cert of `leaf` against a store holding only `ca`, for a TLS server; 0 when
// it verifies, else the X509_V_ERR code.
int verify(X509* leaf, const CertificateAuthority& ca) {
  X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.certificate());
  X509StoreCtxPtr context(X509_STORE_CTX_new());
  X509_STORE_CTX_init(context.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(context.get(), X509_PURPOSE_SSL_SERVER);
  int ok = X509_verify_cert(context.get());
  int error = X509_STORE_CTX_get_error(context.get());
  return ok == 1 ? 0 : (error == 0 ? -1 : error);
}

std::string common_name(X509* certificate) {
  X509_NAME* name = X509_get_subject_name(certificate);
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

}  // namespace

TEST_CASE_FIXTURE(Fixture, "a leaf verifies against the CA for its DNS name only") {
  LeafMinter minter(ca);
  auto leaf = minter.leaf_for("api.example.com", now);
  REQUIRE(leaf.ok());
  X509* cert = (*leaf)->certificate.get();
  CHECK(verify(cert, ca) == 0);
  CHECK(X509_check_host(cert, "api.example.com", 0, 0, nullptr) == 1);
  CHECK(X509_check_host(cert, "other.example.com", 0, 0, nullptr) != 1);
  CHECK(X509_check_private_key(cert, minter.leaf_key()) == 1);
  CHECK(common_name(cert) == "api.example.com");
  CHECK(X509_check_ca(cert) == 0);
  CHECK(X509_get_key_usage(cert) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_get_extended_key_usage(cert) == XKU_SSL_SERVER);
  const ASN1_OCTET_STRING* authority_key = X509_get0_authority_key_id(cert);
  REQUIRE(authority_key != nullptr);
  CHECK(ASN1_OCTET_STRING_cmp(authority_key, X509_get0_subject_key_id(ca.certificate())) == 0);
  CHECK(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca.certificate())) == 0);
  CHECK(minter.counters().minted == 1);
}

TEST_CASE_FIXTURE(Fixture, "a leaf does not verify against another CA") {
  auto other = CertificateAuthority::create("other CA", now);
  REQUIRE(other.ok());
  LeafMinter minter(ca);
  auto leaf = minter.leaf_for("example.com", now);
  REQUIRE(leaf.ok());
  CHECK(verify((*leaf)->certificate.get(), *other) != 0);
}

TEST_CASE_FIXTURE(Fixture, "IP literals get an IP SAN") {
  LeafMinter minter(ca);
  auto v4 = minter.leaf_for("192.0.2.7", now);
  REQUIRE(v4.ok());
  CHECK(verify((*v4)->certificate.get(), ca) == 0);
  CHECK(X509_check_ip_asc((*v4)->certificate.get(), "192.0.2.7", 0) == 1);
  CHECK(X509_check_ip_asc((*v4)->certificate.get(), "192.0.2.8", 0) != 1);

  auto v6 = minter.leaf_for("2001:db8::1", now);
  REQUIRE(v6.ok());
  CHECK(verify((*v6)->certificate.get(), ca) == 0);
  CHECK(X509_check_ip_asc((*v6)->certificate.get(), "2001:db8::1", 0) == 1);
  CHECK(X509_check_ip_asc((*v6)->certificate.get(), "2001:db8:0:0:0:0:0:1", 0) == 1);
  CHECK(X509_check_ip_asc((*v6)->certificate.get(), "2001:db8::2", 0) != 1);
}

TEST_CASE_FIXTURE(Fixture, "a wildcard name covers one label") {
  LeafMinter minter(ca);
  auto leaf = minter.leaf_for("*.example.org", now);
  REQUIRE(leaf.ok());
  CHECK(X509_check_host((*leaf)->certificate.get(), "a.example.org", 0, 0, nullptr) == 1);
  CHECK(X509_check_host((*leaf)->certificate.get(), "a.b.example.org", 0, 0, nullptr) != 1);
}

TEST_CASE_FIXTURE(Fixture, "names longer than 64 bytes get no CN but still verify") {
  LeafMinter minter(ca);
  std::string name = std::string(63, 'a') + "." + std::string(40, 'b') + ".example";
  auto leaf = minter.leaf_for(name, now);
  REQUIRE(leaf.ok());
  CHECK(common_name((*leaf)->certificate.get()).empty());
  CHECK(verify((*leaf)->certificate.get(), ca) == 0);
  CHECK(X509_check_host((*leaf)->certificate.get(), name.c_str(), name.size(), 0, nullptr) == 1);
}

TEST_CASE_FIXTURE(Fixture, "invalid names are refused") {
  LeafMinter minter(ca);
  for (std::string bad : {std::string(), std::string("Example.com"), std::string("a b.com"),
                          std::string("a,DNS:evil.com"), std::string("a\0b", 3), std::string("x_y.com"),
                          std::string(254, 'a'), std::string("[::1]")}) {
    CAPTURE(bad);
    CHECK_FALSE(minter.leaf_for(bad, now).ok());
  }
  CHECK(minter.leaf_for(std::string(253, 'a'), now).ok());
  CHECK(minter.counters().refused == 8);
  CHECK(minter.counters().minted == 1);
}

TEST_CASE_FIXTURE(Fixture, "a cache hit returns the same leaf without signing") {
  LeafMinter minter(ca);
  auto first = minter.leaf_for("example.com", now);
  auto second = minter.leaf_for("example.com", now + std::chrono::hours(1));
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(first->get() == second->get());
  CHECK(minter.counters().minted == 1);
  CHECK(minter.counters().cache_hits == 1);
  auto other = minter.leaf_for("example.net", now);
  REQUIRE(other.ok());
  CHECK(other->get() != first->get());
  CHECK(minter.counters().minted == 2);
}

TEST_CASE_FIXTURE(Fixture, "the cache evicts the least recently used leaf at capacity") {
  LeafMinter minter(ca, 2);
  auto a = minter.leaf_for("a.test", now);
  auto b = minter.leaf_for("b.test", now);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(minter.leaf_for("a.test", now).ok());  // a is now the most recent
  auto c = minter.leaf_for("c.test", now);       // evicts b
  REQUIRE(c.ok());
  CHECK(minter.size() == 2);
  CHECK(minter.counters().evictions == 1);
  CHECK(minter.leaf_for("a.test", now)->get() == a->get());
  CHECK(minter.counters().minted == 3);
  auto b_again = minter.leaf_for("b.test", now);  // minted afresh, evicts c
  REQUIRE(b_again.ok());
  CHECK(b_again->get() != b->get());
  CHECK(minter.counters().minted == 4);
  CHECK(minter.counters().evictions == 2);
}

TEST_CASE_FIXTURE(Fixture, "leaves share one key and never outlive the CA") {
  LeafMinter minter(ca);
  auto first = minter.leaf_for("a.test", now);
  auto second = minter.leaf_for("b.test", now + std::chrono::hours(24 * 20));
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(X509_check_private_key((*second)->certificate.get(), minter.leaf_key()) == 1);
  CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber((*first)->certificate.get()),
                         X509_get0_serialNumber((*second)->certificate.get())) != 0);
  // Minted 20 days in: capped at the CA's notAfter, not 30 days on.
  CHECK(ASN1_TIME_compare(X509_get0_notAfter((*second)->certificate.get()),
                          X509_get0_notAfter(ca.certificate())) == 0);
  CHECK(ASN1_TIME_compare(X509_get0_notAfter((*first)->certificate.get()),
                          X509_get0_notAfter(ca.certificate())) <= 0);
  // After the CA expired nothing is minted.
  CHECK_FALSE(minter.leaf_for("c.test", now + std::chrono::hours(24 * 31)).ok());
}

TEST_CASE_FIXTURE(Fixture, "a cached leaf near its expiry is minted afresh") {
  LeafMinter minter(ca);
  auto first = minter.leaf_for("a.test", now);
  REQUIRE(first.ok());
  // 30 days on minus 30 minutes: the CA still lives (its notAfter is now + 30 days), the
  // leaf (notAfter now + 30 days) is within an hour of expiry.
  auto later = minter.leaf_for("a.test", now + std::chrono::hours(24 * 30) - std::chrono::minutes(30));
  REQUIRE(later.ok());
  CHECK(later->get() != first->get());
  CHECK(minter.counters().cache_hits == 0);
}

TEST_CASE("is_ip_literal") {
  CHECK(is_ip_literal("10.0.0.1"));
  CHECK(is_ip_literal("::1"));
  CHECK(is_ip_literal("2001:db8::1"));
  CHECK_FALSE(is_ip_literal("example.com"));
  CHECK_FALSE(is_ip_literal("10.0.0"));
  CHECK_FALSE(is_ip_literal(""));
  CHECK_FALSE(is_ip_literal("1.2.3.4.5"));
}
