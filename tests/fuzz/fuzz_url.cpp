// Fuzzes URL and authority splitting: never a crash, and a parsed target's host is
// canonical (parsing its text again gives the same host).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto target = airlock::policy::parse_url(text);
  if (target) {
    std::string host = target->host.to_string();
    if (target->host.is_ip() && !target->host.ip().is_v4()) host = "[" + host + "]";
    auto again = airlock::policy::parse_authority(host, target->port);
    if (!again || again->first.to_string() != target->host.to_string()) __builtin_trap();
  }
  (void)airlock::policy::parse_authority(text, 443);
  return 0;
}
