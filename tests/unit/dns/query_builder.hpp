// Test-side DNS query builder: hand-assembled wire bytes, so tests don't trust the code
// under test to produce their input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::dns::test {

using Bytes = std::vector<std::uint8_t>;

inline void put16(Bytes& out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value & 0xFF));
}

// "www.example.com" (a trailing dot is allowed) -> 3www7example3com0.
inline Bytes encode_name(std::string_view dotted) {
  Bytes out;
  if (!dotted.empty() && dotted.back() == '.') dotted.remove_suffix(1);
  while (!dotted.empty()) {
    auto dot = dotted.find('.');
    auto label = dotted.substr(0, dot);
    out.push_back(static_cast<std::uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
    if (dot == std::string_view::npos) break;
    dotted.remove_prefix(dot + 1);
  }
  out.push_back(0);
  return out;
}

struct QueryBuilder {
  std::uint16_t id = 0xBEEF;
  std::uint16_t flags = 0x0100;  // RD
  std::uint16_t qdcount = 1;
  std::uint16_t ancount = 0;
  std::uint16_t nscount = 0;
  std::optional<Bytes> raw_name;  // replaces name when set
  std::string name = "example.com";
  std::uint16_t type = 1;
  std::uint16_t klass = 1;
  std::optional<std::uint16_t> edns_size;
  std::uint8_t edns_version = 0;

  Bytes build() const {
    Bytes out;
    put16(out, id);
    put16(out, flags);
    put16(out, qdcount);
    put16(out, ancount);
    put16(out, nscount);
    put16(out, edns_size ? 1 : 0);
    Bytes n = raw_name ? *raw_name : encode_name(name);
    out.insert(out.end(), n.begin(), n.end());
    put16(out, type);
    put16(out, klass);
    if (edns_size) {
      out.push_back(0);
      put16(out, 41);
      put16(out, *edns_size);
      out.push_back(0);             // extended rcode
      out.push_back(edns_version);
      put16(out, 0);                // flags
      put16(out, 0);                // rdlength
    }
    return out;
  }
};

}  // namespace airlock::dns::test
