// Leaf certificates for the TLS MITM, cached by name; see leaf_minter.hpp.
#include "certs/leaf_minter.hpp"

#include <ctime>
#include <stdexcept>

#include "certs/x509_builder.hpp"

namespace airlock::certs {

namespace {

constexpr std::size_t kMaxCommonName = 64;  // X.509 ub-common-name

bool valid_dns_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxLeafName) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '*';
    if (!ok) return false;
  }
  return true;
}

// The time a certificate's notAfter names; the epoch when unreadable (so never cached long).
SystemClock::time_point not_after_of(const X509* certificate) {
  std::tm parts{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &parts) != 1) return {};
  return SystemClock::from_time_t(timegm(&parts));
}

}  // namespace

bool is_ip_literal(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  std::string copy(text);
  Asn1OctetStringPtr address(a2i_IPADDRESS(copy.c_str()));
  return address != nullptr;
}

LeafMinter::LeafMinter(const CertificateAuthority& authority, std::size_t cache_capacity)
    : authority_(&authority), capacity_(cache_capacity == 0 ? 1 : cache_capacity) {
  auto key = generate_p256_key();
  if (!key) throw std::runtime_error("leaf key: " + key.error());
  key_ = std::move(*key);
}

Result<std::shared_ptr<const LeafMinter::Leaf>> LeafMinter::leaf_for(std::string_view name,
                                                                     SystemClock::time_point now) {
  bool ip = is_ip_literal(name);
  if (!ip && !valid_dns_name(name)) {
    ++counters_.refused;
    return Error{"invalid certificate name"};
  }
  std::string key(name);
  if (auto found = by_name_.find(key); found != by_name_.end()) {
    auto entry = found->second;
    if (now < entry->refresh_after) {
      lru_.splice(lru_.begin(), lru_, entry);
      ++counters_.cache_hits;
      return entry->leaf;
    }
    lru_.erase(entry);  // about to expire: mint afresh below
    by_name_.erase(found);
  }

  auto leaf = mint(key, ip, now);
  if (!leaf) return leaf;
  if (by_name_.size() >= capacity_) {
    by_name_.erase(lru_.back().name);
    lru_.pop_back();
    ++counters_.evictions;
  }
  SystemClock::time_point refresh_after = not_after_of((*leaf)->certificate.get()) - kBackdate;
  lru_.push_front(Entry{key, *leaf, refresh_after});
  by_name_.emplace(std::move(key), lru_.begin());
  return leaf;
}

Result<std::shared_ptr<const LeafMinter::Leaf>> LeafMinter::mint(const std::string& name, bool ip,
                                                                 SystemClock::time_point now) {
  X509* ca = authority_->certificate();
  std::time_t now_t = SystemClock::to_time_t(now);
  if (X509_cmp_time(X509_get0_notAfter(ca), &now_t) <= 0) return Error{"certificate authority expired"};

  auto certificate = new_certificate(key_.get(), now);
  if (!certificate) return Error{certificate.error()};
  X509* cert = certificate->get();
  std::time_t wanted_end = SystemClock::to_time_t(now + kValidity);
  if (X509_cmp_time(X509_get0_notAfter(ca), &wanted_end) < 0 &&
      X509_set1_notAfter(cert, X509_get0_notAfter(ca)) != 1)
    return Error{openssl_error("leaf validity")};

  if (name.size() <= kMaxCommonName && !add_name_entry(X509_get_subject_name(cert), "CN", name))
    return Error{openssl_error("leaf name")};
  if (X509_set_issuer_name(cert, X509_get_subject_name(ca)) != 1) return Error{openssl_error("leaf issuer")};

  std::string san = (ip ? "IP:" : "DNS:") + name;
  if (!add_extension(cert, ca, NID_basic_constraints, "CA:FALSE") ||
      !add_extension(cert, ca, NID_key_usage, "critical,digitalSignature") ||
      !add_extension(cert, ca, NID_ext_key_usage, "serverAuth") ||
      !add_extension(cert, ca, NID_authority_key_identifier, "keyid:always") ||
      !add_extension(cert, ca, NID_subject_alt_name, san.c_str()))
    return Error{openssl_error("leaf extensions")};
  auto signed_ok = sign_sha256(cert, authority_->key());
  if (!signed_ok) return Error{signed_ok.error()};
  ++counters_.minted;
  return std::shared_ptr<const Leaf>(std::make_shared<Leaf>(Leaf{std::move(*certificate)}));
}

}  // namespace airlock::certs
