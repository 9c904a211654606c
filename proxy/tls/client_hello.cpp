// TLS ClientHello parser; see client_hello.hpp for what is accepted and refused.
#include "proxy/tls/client_hello.hpp"

#include <algorithm>
#include <optional>

namespace airlock::tls {

namespace {

constexpr std::uint8_t kContentHandshake = 0x16;
constexpr std::uint8_t kHandshakeClientHello = 0x01;
constexpr std::size_t kHandshakeHeaderBytes = 4;
constexpr std::size_t kRandomBytes = 32;
constexpr std::size_t kMaxSessionId = 32;
constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint16_t kExtAlpn = 16;
constexpr std::uint16_t kExtSupportedVersions = 43;
constexpr std::uint8_t kHostName = 0;
constexpr std::uint16_t kTls13 = 0x0304;

// A read position in a span; every read checks the bounds and says "nothing" past them.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> data) : data_(data) {}

  bool at_end() const { return offset_ == data_.size(); }

  std::optional<std::uint8_t> u8() {
    if (offset_ >= data_.size()) return std::nullopt;
    return data_[offset_++];
  }
  std::optional<std::uint16_t> u16() {
    if (data_.size() - offset_ < 2) return std::nullopt;
    auto value = static_cast<std::uint16_t>((data_[offset_] << 8) | data_[offset_ + 1]);
    offset_ += 2;
    return value;
  }
  std::optional<std::span<const std::uint8_t>> bytes(std::size_t count) {
    if (data_.size() - offset_ < count) return std::nullopt;
    auto out = data_.subspan(offset_, count);
    offset_ += count;
    return out;
  }
  // A vector with a one- or two-byte length prefix.
  std::optional<std::span<const std::uint8_t>> vector8() {
    auto length = u8();
    if (!length) return std::nullopt;
    return bytes(*length);
  }
  std::optional<std::span<const std::uint8_t>> vector16() {
    auto length = u16();
    if (!length) return std::nullopt;
    return bytes(*length);
  }

 private:
  std::span<const std::uint8_t> data_;
  std::size_t offset_ = 0;
};

// server_name (RFC 6066 3): one host_name of printable ASCII; other name types skipped.
bool read_server_name(std::span<const std::uint8_t> data, ClientHello& out) {
  Reader extension(data);
  auto list = extension.vector16();
  if (!list || !extension.at_end() || list->empty()) return false;
  Reader names(*list);
  while (!names.at_end()) {
    auto type = names.u8();
    auto name = names.vector16();
    if (!type || !name) return false;
    if (*type != kHostName) continue;
    if (out.sni_present || name->empty() || name->size() > kMaxSniBytes) return false;
    for (std::uint8_t c : *name)
      if (c <= 0x20 || c >= 0x7F) return false;
    out.sni.assign(name->begin(), name->end());
    out.sni_present = true;
  }
  return true;
}

// application_layer_protocol_negotiation (RFC 7301 3.1): a non-empty list of non-empty names.
bool read_alpn(std::span<const std::uint8_t> data, ClientHello& out) {
  Reader extension(data);
  auto list = extension.vector16();
  if (!list || !extension.at_end() || list->empty()) return false;
  Reader protocols(*list);
  while (!protocols.at_end()) {
    auto name = protocols.vector8();
    if (!name || name->empty()) return false;
    out.alpn.emplace_back(name->begin(), name->end());
  }
  return true;
}

// supported_versions (RFC 8446 4.2.1), ClientHello form: a list of 16-bit versions.
bool read_supported_versions(std::span<const std::uint8_t> data, ClientHello& out) {
  Reader extension(data);
  auto list = extension.vector8();
  if (!list || !extension.at_end() || list->empty() || list->size() % 2 != 0) return false;
  Reader versions(*list);
  while (auto version = versions.u16())
    if (*version == kTls13) out.supports_tls13 = true;
  return true;
}

// The ClientHello body (after the handshake header).
HelloStatus read_body(std::span<const std::uint8_t> body, ClientHello& out) {
  Reader hello(body);
  auto legacy_version = hello.u16();
  auto random = hello.bytes(kRandomBytes);
  auto session_id = hello.vector8();
  auto cipher_suites = hello.vector16();
  auto compression = hello.vector8();
  if (!legacy_version || !random || !session_id || session_id->size() > kMaxSessionId || !cipher_suites ||
      cipher_suites->empty() || cipher_suites->size() % 2 != 0 || !compression || compression->empty())
    return HelloStatus::malformed;
  out.legacy_version = *legacy_version;
  if (hello.at_end()) return HelloStatus::complete;  // no extensions (SSL 3.0 style)

  auto extensions_block = hello.vector16();
  if (!extensions_block || !hello.at_end()) return HelloStatus::malformed;
  Reader extensions(*extensions_block);
  std::vector<std::uint16_t> seen;
  while (!extensions.at_end()) {
    auto type = extensions.u16();
    auto data = extensions.vector16();
    if (!type || !data) return HelloStatus::malformed;
    if (std::find(seen.begin(), seen.end(), *type) != seen.end()) return HelloStatus::malformed;
    seen.push_back(*type);
    bool ok = true;
    switch (*type) {
      case kExtServerName: ok = read_server_name(*data, out); break;
      case kExtAlpn: ok = read_alpn(*data, out); break;
      case kExtSupportedVersions: ok = read_supported_versions(*data, out); break;
      default: break;
    }
    if (!ok) return HelloStatus::malformed;
  }
  return HelloStatus::complete;
}

std::size_t u24(std::span<const std::uint8_t> bytes) {
  return (std::size_t{bytes[0]} << 16) | (std::size_t{bytes[1]} << 8) | bytes[2];
}

}  // namespace

HelloStatus parse_client_hello(std::span<const std::uint8_t> bytes, ClientHello& out) {
  out = ClientHello{};
  if (bytes.empty()) return HelloStatus::need_more;
  if (bytes[0] != kContentHandshake) return HelloStatus::not_tls;
  if (bytes.size() < 2) return HelloStatus::need_more;
  if (bytes[1] != 0x03) return HelloStatus::not_tls;

  // Join the handshake fragments until the message is whole. `needed` is its size with
  // its header, known once the header is in.
  std::vector<std::uint8_t> message;
  std::size_t needed = 0;
  std::size_t pos = 0;  // flow offset of the next record header
  std::uint16_t record_version = 0;
  while (needed == 0 || message.size() < needed) {
    if (pos >= kMaxClientHelloBytes) return HelloStatus::too_large;
    std::span<const std::uint8_t> rest = bytes.subspan(pos);
    if (rest.size() < kRecordHeaderBytes) {
      if (!rest.empty() && rest[0] != kContentHandshake) return HelloStatus::malformed;
      if (rest.size() >= 2 && rest[1] != 0x03) return HelloStatus::malformed;
      return bytes.size() >= kMaxClientHelloBytes ? HelloStatus::too_large : HelloStatus::need_more;
    }
    std::size_t length = (std::size_t{rest[3]} << 8) | rest[4];
    if (rest[0] != kContentHandshake || rest[1] != 0x03 || length == 0 || length > kMaxRecordPayload)
      return HelloStatus::malformed;
    if (pos == 0) record_version = static_cast<std::uint16_t>((rest[1] << 8) | rest[2]);

    std::size_t available = std::min(length, rest.size() - kRecordHeaderBytes);
    std::size_t take = available;
    if (needed != 0) take = std::min(take, needed - message.size());
    std::size_t before = message.size();
    auto fragment = rest.subspan(kRecordHeaderBytes, take);
    message.insert(message.end(), fragment.begin(), fragment.end());
    if (needed == 0 && message.size() >= kHandshakeHeaderBytes) {
      if (message[0] != kHandshakeClientHello) return HelloStatus::malformed;
      needed = kHandshakeHeaderBytes + u24(std::span(message).subspan(1, 3));
      // The earliest the hello can end: every record full, each with its header.
      std::size_t records = (needed + kMaxRecordPayload - 1) / kMaxRecordPayload;
      if (needed + records * kRecordHeaderBytes > kMaxClientHelloBytes) return HelloStatus::too_large;
      if (message.size() > needed) message.resize(needed);
    }
    if (needed != 0 && message.size() == needed) {
      if (pos + kRecordHeaderBytes + (needed - before) > kMaxClientHelloBytes) return HelloStatus::too_large;
      break;
    }
    if (available < length) {  // this record is still arriving
      return bytes.size() >= kMaxClientHelloBytes ? HelloStatus::too_large : HelloStatus::need_more;
    }
    pos += kRecordHeaderBytes + length;
  }

  ClientHello hello;
  hello.record_version = record_version;
  HelloStatus status = read_body(std::span(message).subspan(kHandshakeHeaderBytes), hello);
  if (status == HelloStatus::complete) out = std::move(hello);
  return status;
}

const char* to_string(HelloStatus status) {
  switch (status) {
    case HelloStatus::need_more: return "need_more";
    case HelloStatus::complete: return "complete";
    case HelloStatus::not_tls: return "not_tls";
    case HelloStatus::malformed: return "malformed";
    case HelloStatus::too_large: return "too_large";
  }
  return "unknown";
}

}  // namespace airlock::tls
