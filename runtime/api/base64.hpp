// Standard base64 (RFC 4648, with padding) for the bytes that travel inside JSON-RPC
// messages: exec output and input, file contents. Decoding is strict: anything but the
// alphabet and final padding is refused, so a typo is an error rather than lost bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace airlock::api {

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace airlock::api
