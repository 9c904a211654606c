// Fuzzes the first-bytes path of a TLS flow (proxy/tls): classify_first_bytes and
// parse_client_hello on the input whole, on every prefix cut at sizes derived from the
// input (as a flow arrives), and, when it is one record, re-framed into records of 1..64
// bytes. Invariants,
// beyond "no crash": a prefix's answer is consistent with the whole's (a complete hello
// never has a prefix that is not_tls, and once complete stays complete); a complete
// hello has an SNI only when sni_present, of 1..253 printable ASCII bytes, and non-empty
// ALPN names; anything classified tls starts 0x16 0x03; a re-framed complete hello
// parses to the same fields.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "proxy/tls/classify.hpp"
#include "proxy/tls/client_hello.hpp"

using namespace airlock::tls;

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

void check_hello(const ClientHello& hello) {
  require(hello.sni_present == !hello.sni.empty());
  require(hello.sni.size() <= kMaxSniBytes);
  for (char c : hello.sni) require(c > 0x20 && c < 0x7F);
  for (const auto& protocol : hello.alpn) require(!protocol.empty() && protocol.size() <= 255);
}

// The handshake bytes of a single-record input, re-framed into records of `fragment`.
std::vector<std::uint8_t> reframe(std::span<const std::uint8_t> input, std::size_t fragment) {
  std::vector<std::uint8_t> out;
  if (input.size() < kRecordHeaderBytes) return out;
  auto message = input.subspan(kRecordHeaderBytes);
  for (std::size_t pos = 0; pos < message.size(); pos += fragment) {
    std::size_t length = std::min(fragment, message.size() - pos);
    out.insert(out.end(), {0x16, 0x03, 0x01, 0x00, static_cast<std::uint8_t>(length)});
    auto piece = message.subspan(pos, length);
    out.insert(out.end(), piece.begin(), piece.end());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> input(data, size);

  FlowKind kind = classify_first_bytes(input);
  if (kind == FlowKind::tls) require(size >= 3 && data[0] == 0x16 && data[1] == 0x03);
  if (kind == FlowKind::need_more) require(size < 8);

  ClientHello whole;
  HelloStatus status = parse_client_hello(input, whole);
  if (status == HelloStatus::complete) check_hello(whole);
  if (status != HelloStatus::not_tls && size >= 3) require(kind == FlowKind::tls);

  // The flow as it arrives: chunk sizes from the first byte.
  std::size_t chunk = size == 0 ? 1 : std::size_t{data[0]} % 61 + 1;
  bool was_complete = false;
  for (std::size_t length = 0; length <= size; length += chunk) {
    ClientHello prefix;
    HelloStatus prefix_status = parse_client_hello(input.first(length), prefix);
    if (status == HelloStatus::complete) require(prefix_status != HelloStatus::not_tls);
    if (was_complete) require(prefix_status == HelloStatus::complete);
    if (prefix_status == HelloStatus::complete) {
      check_hello(prefix);
      require(status == HelloStatus::complete && prefix.sni == whole.sni && prefix.alpn == whole.alpn);
      was_complete = true;
    }
  }

  bool single_record = size >= kRecordHeaderBytes &&
                       ((std::size_t{data[3]} << 8) | data[4]) + kRecordHeaderBytes == size;
  if (status == HelloStatus::complete && single_record) {
    std::size_t fragment = size == 0 ? 1 : std::size_t{data[size - 1]} % 64 + 1;
    auto framed = reframe(input, fragment);
    ClientHello again;
    HelloStatus reframed = parse_client_hello(framed, again);
    // A single-record hello re-framed: the same fields, unless the record framing grew
    // past the cap.
    require(reframed == HelloStatus::complete || reframed == HelloStatus::too_large);
    if (reframed == HelloStatus::complete) {
      require(again.sni == whole.sni && again.alpn == whole.alpn && again.supports_tls13 == whole.supports_tls13);
    }
  }
  return 0;
}
