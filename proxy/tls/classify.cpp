// First-bytes flow classification; see classify.hpp.
#include "proxy/tls/classify.hpp"

#include <algorithm>
#include <array>
#include <string_view>

namespace airlock::tls {

namespace {

constexpr std::size_t kTlsPrefix = 3;  // content type and version, as the spec asks

constexpr std::array<std::string_view, 9> kMethods = {
    "GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "};

// TLS handshake record header shape: need_more, tls, or opaque.
FlowKind classify_tls(std::span<const std::uint8_t> bytes) {
  if (bytes.size() >= 2 && bytes[1] != 0x03) return FlowKind::opaque;
  return bytes.size() < kTlsPrefix ? FlowKind::need_more : FlowKind::tls;
}

}  // namespace

FlowKind classify_first_bytes(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return FlowKind::need_more;
  if (bytes[0] == 0x16) return classify_tls(bytes);

  bool prefix_of_some = false;
  for (std::string_view method : kMethods) {
    std::size_t common = std::min(bytes.size(), method.size());
    bool match = std::equal(method.begin(), method.begin() + static_cast<std::ptrdiff_t>(common), bytes.begin(),
                            [](char expected, std::uint8_t actual) {
                              return static_cast<std::uint8_t>(expected) == actual;
                            });
    if (!match) continue;
    if (bytes.size() >= method.size()) return FlowKind::http;
    prefix_of_some = true;
  }
  return prefix_of_some ? FlowKind::need_more : FlowKind::opaque;
}

const char* to_string(FlowKind kind) {
  switch (kind) {
    case FlowKind::need_more: return "need_more";
    case FlowKind::tls: return "tls";
    case FlowKind::http: return "http";
    case FlowKind::opaque: return "opaque";
  }
  return "unknown";
}

}  // namespace airlock::tls
