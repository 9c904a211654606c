// TLS ClientHello parser: what the proxy learns from a TLS flow's first bytes before it
// terminates the TLS itself.
//
// Theory of operation. The guest's first flight is a ClientHello (RFC 8446 4.1.2, RFC
// 5246 7.4.1.2) inside one or more TLS records. parse_client_hello reads the records
// (content type handshake, version 0x03xx, 1..2^14 bytes each), joins their fragments
// into the handshake message, and reads the message through a bounds-checked reader
// that never moves past the end of its span. It is called again on the whole prefix
// as more bytes arrive, and says need_more until the message is complete; it keeps no
// state between calls.
//
// It extracts the SNI (server_name, host_name entry), the ALPN protocol list, and
// whether supported_versions offers TLS 1.3. It refuses (malformed): records of another
// content type before the hello is complete, empty records, a first handshake message
// that is not a ClientHello, lengths that disagree, a session id over 32 bytes, an odd
// or empty cipher-suite list, no compression method, a repeated extension, a second
// host_name, an SNI that is empty, over 253 bytes or not printable ASCII (NUL and
// control bytes included), an empty ALPN list or protocol name, and bytes after the
// extensions. Unknown extensions are skipped. Bytes after the hello (the rest of a
// record, later records) are ignored. Anything that does not start as a TLS handshake
// record is not_tls.
//
// Cap: the hello, record headers included, must fit in kMaxClientHelloBytes of the flow
// (too_large otherwise, known from the declared length as early as possible), so a
// caller never needs to buffer more than that to get an answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace airlock::tls {

inline constexpr std::size_t kMaxClientHelloBytes = 32 * 1024;
inline constexpr std::size_t kMaxRecordPayload = 16 * 1024;  // 2^14, RFC 8446 5.1
inline constexpr std::size_t kMaxSniBytes = 253;
inline constexpr std::size_t kRecordHeaderBytes = 5;

enum class HelloStatus { need_more, complete, not_tls, malformed, too_large };

struct ClientHello {
  std::string sni;                // as sent (not lower-cased); empty when absent
  bool sni_present = false;
  std::vector<std::string> alpn;  // the offered protocols, in the client's order
  std::uint16_t record_version = 0;  // of the first record
  std::uint16_t legacy_version = 0;  // ClientHello.legacy_version
  bool supports_tls13 = false;       // supported_versions lists 0x0304
};

// Parses the ClientHello at the start of a flow; `out` is reset and filled only when the
// result is complete.
HelloStatus parse_client_hello(std::span<const std::uint8_t> bytes, ClientHello& out);

// A stable lower-case name for logs and counters ("need_more", "malformed", ...).
const char* to_string(HelloStatus status);

}  // namespace airlock::tls
