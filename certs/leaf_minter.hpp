// LeafMinter: the server certificates the TLS MITM presents to the guest, one per name.
//
// Theory of operation. When the guest opens TLS to a name (its SNI, or the flow's
// destination when it sent none), the MITM needs a certificate for that name signed by
// the VM's CA. Signing costs an ECDSA operation, and a guest talks to few names many
// times, so leaves are cached by name in a bounded LRU: a hit costs no signature, and a
// full cache evicts its least-recently-used leaf. All leaves share ONE key pair made
// when the minter is built (the key is as private as the CA's, and sharing it makes a
// miss cost one signature and no key generation).
//
// A name is a canonical (lower-case) DNS name, possibly a wildcard, or an IP literal
// (IPv4 dotted quad or IPv6 text). Anything else - empty, longer than 253 bytes, or
// holding bytes outside [a-z0-9.-*] - is refused, since it can only come from a
// confused caller or a hostile guest. A leaf has SAN DNS:<name> or IP:<address>, CN
// <name> when it fits X.509's 64-byte limit, EKU serverAuth, key usage
// digitalSignature, CA:FALSE, the CA's key identifier, a random serial, and is valid
// from an hour ago until 30 days on or the CA's own expiry, whichever comes first. A
// cached leaf within an hour of its expiry is minted afresh.
//
// Not thread-safe: one minter per thread of the proxy, or a lock around it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "certs/authority.hpp"
#include "certs/openssl_ptr.hpp"
#include "common/result.hpp"

namespace airlock::certs {

inline constexpr std::size_t kMaxLeafName = 253;
inline constexpr std::size_t kDefaultLeafCacheCapacity = 1024;

// True when `text` is an IPv4 or IPv6 address literal as OpenSSL reads one.
bool is_ip_literal(std::string_view text);

class LeafMinter {
 public:
  struct Leaf {
    X509Ptr certificate;
  };

  struct Counters {
    std::uint64_t minted = 0;      // leaves signed
    std::uint64_t cache_hits = 0;  // leaf_for() answered from the cache
    std::uint64_t evictions = 0;   // leaves dropped because the cache was full
    std::uint64_t refused = 0;     // names rejected as invalid
  };

  // Makes the shared leaf key. The CA must outlive the minter and not move. Throws std::runtime_error
  // when no key can be made (setup time, not the data plane); a capacity of 0 means 1.
  explicit LeafMinter(const CertificateAuthority& authority,
                      std::size_t cache_capacity = kDefaultLeafCacheCapacity);

  // The leaf for `name` (see above for what a name may be), minted or from the cache.
  Result<std::shared_ptr<const Leaf>> leaf_for(std::string_view name,
                                               std::chrono::system_clock::time_point now);

  // The private key of every leaf, for the TLS server; valid while the minter lives.
  EVP_PKEY* leaf_key() const { return key_.get(); }

  const Counters& counters() const { return counters_; }
  std::size_t size() const { return by_name_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    std::string name;
    std::shared_ptr<const Leaf> leaf;
    std::chrono::system_clock::time_point refresh_after;
  };

  Result<std::shared_ptr<const Leaf>> mint(const std::string& name, bool ip,
                                           std::chrono::system_clock::time_point now);

  const CertificateAuthority* authority_;
  std::size_t capacity_;
  EvpPkeyPtr key_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> by_name_;
  Counters counters_;
};

}  // namespace airlock::certs
