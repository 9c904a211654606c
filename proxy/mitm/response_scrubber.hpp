// ResponseScrubber: keeps real secret values from coming back to the guest.
//
// Theory of operation. A request to a secret's host carries the real value; a server may
// echo it (a redirect's Location with the query, an API that repeats a header). On flows
// to hosts a secret may reach, every byte from upstream passes through here before the
// guest sees it: a real value is replaced by its placeholder where both have the same
// length (the SecretStore draws placeholders that way for values of 36 bytes or more),
// so framing and Content-Length stay right; a real value whose placeholder differs in
// length can't be replaced in place and is reported (echoed()), and the caller cuts the
// response. Only a tail that could be the start of a real value is held back between
// reads, so streamed responses are not delayed. Compressed bodies are not inspected.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "policy/host_pattern.hpp"
#include "policy/secret_store.hpp"

namespace airlock::mitm {

class ResponseScrubber {
 public:
  // Watches the values of the secrets authorised for host:port over TLS.
  ResponseScrubber(const policy::SecretStore& store, const policy::Host& host, std::uint16_t port);

  bool active() const { return !entries_.empty(); }
  // Appends `in` to `out` with real values replaced, holding back a possible prefix.
  // After echoed() is set nothing more is emitted.
  void feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out);
  // Emits what was held back (at the end of a response or of the flow).
  void flush(std::vector<std::uint8_t>& out);

  const std::set<std::string>& scrubbed() const { return scrubbed_; }
  const std::optional<std::string>& echoed() const { return echoed_; }

 private:
  struct Entry {
    std::string name;
    const std::string* value;
    const std::string* placeholder;
  };
  void scan(bool at_end, std::vector<std::uint8_t>& out);

  std::vector<Entry> entries_;
  std::string held_;
  std::set<std::string> scrubbed_;
  std::optional<std::string> echoed_;
};

}  // namespace airlock::mitm
