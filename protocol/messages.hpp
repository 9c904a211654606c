// Helpers for CONTROL payloads: one JSON object with a string "op".
//
// Control payloads arrive from a peer we do not trust (the guest, for the host; the host
// is trusted by the guest but still gets no crash for a typo). Parsing never throws:
// parse_control() returns nothing for anything but a JSON object with a string "op",
// and the typed getters return nothing when a key is absent or has the wrong type, so a
// caller can write `get_int(m, "rows").value_or(24)` without a try block. Serialising
// replaces invalid UTF-8 (e.g. odd file names) instead of throwing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace airlock::protocol {

using Json = nlohmann::json;

// The version carried in the guest's hello; bumped on incompatible changes.
inline constexpr int kProtocolVersion = 1;

// Error codes shared by both sides (the "code" of an {"op":"error"} reply).
namespace error_code {
inline constexpr std::string_view not_found = "not_found";
inline constexpr std::string_view permission_denied = "permission_denied";
inline constexpr std::string_view invalid = "invalid";
inline constexpr std::string_view io = "io";
inline constexpr std::string_view too_large = "too_large";
inline constexpr std::string_view busy = "busy";
}  // namespace error_code

// A JSON object with a string "op", or nothing.
std::optional<Json> parse_control(std::string_view payload);

// The "op" of a parsed control message ("" when absent, which parse_control excludes).
std::string op_of(const Json& message);

// Typed getters: nothing when the key is missing, null, or of another type.
std::optional<std::string> get_string(const Json& object, std::string_view key);
// Integers must be exact (no fractions) and fit in int64.
std::optional<std::int64_t> get_int(const Json& object, std::string_view key);
std::optional<bool> get_bool(const Json& object, std::string_view key);
// An array whose every element is a string; nothing if any element is not.
std::optional<std::vector<std::string>> get_string_array(const Json& object, std::string_view key);
// A member that is itself an object (nullptr when absent or not an object).
const Json* get_object(const Json& object, std::string_view key);

// Compact serialisation that never throws on invalid UTF-8 (bytes are replaced).
std::string dump(const Json& message);

// Frequently built messages.
std::string make_error(std::string_view code, std::string_view message);
std::string make_ok();

}  // namespace airlock::protocol
