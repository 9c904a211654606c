// First-bytes classification of a new TCP flow: TLS, HTTP/1.x, or opaque.
//
// Theory of operation. The proxy decides how to handle a flow from the guest's first
// bytes, before it has seen a whole message. A TLS flow starts with a handshake record
// header: content type 0x16, major version 0x03. An HTTP/1.x flow starts with a request
// method token and a space; only the standard methods (GET POST PUT DELETE HEAD OPTIONS
// PATCH CONNECT TRACE) are recognised, case-sensitively as RFC 9110 defines them.
// need_more is returned only while the bytes are still a proper prefix of one of these
// shapes, so at most 8 bytes ("OPTIONS " / "CONNECT ") are ever needed; anything else
// is opaque, and judged by destination name and port alone.
#pragma once

#include <cstdint>
#include <span>

namespace airlock::tls {

enum class FlowKind { need_more, tls, http, opaque };

// What the flow that starts with `bytes` carries (need_more: ask again with more).
FlowKind classify_first_bytes(std::span<const std::uint8_t> bytes);

// A stable lower-case name for logs ("tls", "http", ...).
const char* to_string(FlowKind kind);

}  // namespace airlock::tls
