// Request targets as they may appear in events and logs: query values can carry tokens
// (and secrets after substitution), so only their names are kept.
#pragma once

#include <string>
#include <string_view>

namespace airlock::http {

// Keeps the path and each query parameter's name; a non-empty value becomes
// "[REDACTED]", an empty one ("b=") or a bare name ("c") stays as it is. A #fragment is
// dropped. "/p?a=1&b=&c#f" -> "/p?a=[REDACTED]&b=&c"; a target without '?' is returned
// unchanged (less any fragment).
std::string redact_query_values(std::string_view target);

}  // namespace airlock::http
