// Maps errno values to the protocol's error codes (not_found, permission_denied, ...),
// so every op reports the same failure the same way.
#pragma once

#include <string>
#include <string_view>

namespace airlock::guest {

std::string_view error_code_for_errno(int err);
// {"op":"error","code":<mapped>,"message":"<what>: <strerror>"}
std::string errno_error(int err, std::string_view what);

}  // namespace airlock::guest
