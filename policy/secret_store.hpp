// SecretStore: the placeholders a guest sees in place of secrets, and the one place they
// are swapped for the real values.
//
// Theory of operation. The guest never holds a real secret: environment variable NAME
// carries a placeholder, either the one the policy fixed or "AIRLOCK_PLACEHOLDER_" plus
// 32 random hex characters drawn per VM from the kernel (the name is not part of it, so
// the placeholder tells nothing). The MITM proxy looks for placeholders in what a guest
// sends and swaps them only in requests that go over TLS to a host (and port) the secret
// lists; a placeholder in a request to any other host, or over plain HTTP, is a leak: the
// request is refused and the placeholder never leaves. No placeholder equals or contains
// another, so a scan from left to right has exactly one reading.
//
// The matching itself is secret_scan.hpp's: request_matches() and response_matches() are
// the sets, substitute() and BodySubstituter thin uses of them over a whole string and
// over a body that arrives in pieces.
//
// Real values appear only in substituted output: never in an error text, a name list or
// any other value these classes return.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/host_pattern.hpp"
#include "policy/policy.hpp"
#include "policy/secret_scan.hpp"

namespace airlock::policy {

class SecretStore {
 public:
  // Returns n random lower-case hex characters.
  using RandomHex = std::function<std::string(std::size_t)>;

  static constexpr std::string_view kPlaceholderPrefix = "AIRLOCK_PLACEHOLDER_";
  static constexpr std::size_t kRandomHexChars = 32;
  // A random placeholder is exactly as long as its value when the value has room for
  // the prefix and at least this many hex digits (and is at most kMaxMatchedSize long);
  // the guest then learns the value's length, nothing more.
  static constexpr std::size_t kMinMatchedHexChars = 16;
  static constexpr std::size_t kMaxMatchedSize = 4096;

  struct Entry {
    std::string name;                 // the secret's name, also the guest variable
    std::string placeholder;          // what the guest sees
    SecretValue value;                // what authorized requests carry instead
    std::vector<HostPattern> hosts;   // where the value may go (over TLS)
  };

  // What substitute() did to one string.
  struct Scan {
    std::vector<std::string> swapped;     // names of the secrets swapped in, first seen first
    std::optional<std::string> leaked;    // first secret whose placeholder is not allowed here
  };

  // Builds the entries. Throws PolicyError when two placeholders are equal or one
  // contains another (fixed placeholders only; random ones are drawn again).
  explicit SecretStore(const std::vector<Secret>& secrets, RandomHex random_hex = kernel_random_hex());

  // NAME -> placeholder, for the guest's environment.
  std::map<std::string, std::string> guest_env() const;
  const std::vector<Entry>& entries() const { return entries_; }

  // Whether the entry's real value may go to host:port: TLS and a matching host pattern.
  bool authorized(const Entry& entry, const Host& host, std::uint16_t port, bool tls) const;

  // Replaces every placeholder in text by its real value, in place, when all of them are
  // authorized for host:port; otherwise (or when a secret's real value bound elsewhere is
  // in it) text is left untouched and leaked names the first such secret.
  Scan substitute(std::string& text, const Host& host, std::uint16_t port, bool tls) const;

  // Length of the longest placeholder (0 without secrets).
  std::size_t max_placeholder_size() const { return max_placeholder_size_; }

  // What a request to host:port must have rewritten or refused: each placeholder becomes
  // its value where authorized (TLS to one of its hosts) and is a leak elsewhere; the real
  // value of a secret not authorized here, in any form (value_forms), is a leak too.
  std::shared_ptr<const MatchSet> request_matches(const Host& host, std::uint16_t port, bool tls) const;
  // What a response must not carry back to the guest: every secret's real value, replaced
  // by its placeholder (raw, percent and JSON forms) or unsafe (base64 forms). Null when
  // there are no secrets.
  std::shared_ptr<const MatchSet> response_matches() const { return response_matches_; }
  // Whether some secret's value may go to host:port (its responses are then scrubbed).
  bool any_authorized(const Host& host, std::uint16_t port, bool tls) const;

  // Random hex from the kernel (getrandom), for placeholders.
  static RandomHex kernel_random_hex();

 private:
  std::vector<Entry> entries_;
  std::size_t max_placeholder_size_ = 0;
  std::vector<std::vector<ValueForm>> forms_;  // per entry
  std::shared_ptr<const MatchSet> response_matches_;
};

// Substitution over a request body that arrives in pieces, for one request to host:port:
// a SecretRewriter over request_matches(). Output equals SecretStore::substitute over the
// whole body as long as no leak is found; once one is, nothing more is emitted (the held
// bytes with the secret included) and the caller aborts the request.
class BodySubstituter {
 public:
  BodySubstituter(const SecretStore& store, Host host, std::uint16_t port, bool tls);

  // Appends to out every byte of in (after substitution) that can't be the start of a
  // placeholder cut at the end of in; those few are held for the next call.
  void feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out);
  // End of body: flushes the held bytes.
  void finish(std::vector<std::uint8_t>& out);

  const std::set<std::string>& swapped() const { return rewriter_.replaced(); }
  std::optional<std::string> leaked() const {
    return rewriter_.stopped() ? std::optional(rewriter_.stopped()->secret) : std::nullopt;
  }
  // Bytes held back right now (less than the longest pattern).
  std::size_t held() const { return rewriter_.held(); }

 private:
  SecretRewriter rewriter_;
};

}  // namespace airlock::policy
