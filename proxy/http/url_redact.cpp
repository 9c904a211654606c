// Query value redaction; see url_redact.hpp.
#include "proxy/http/url_redact.hpp"

namespace airlock::http {

std::string redact_query_values(std::string_view target) {
  if (const auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  const auto question = target.find('?');
  if (question == std::string_view::npos) return std::string(target);

  std::string out(target.substr(0, question + 1));
  std::string_view query = target.substr(question + 1);
  bool first = true;
  while (true) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (!first) out += '&';
    first = false;
    const auto eq = param.find('=');
    if (eq == std::string_view::npos || eq + 1 == param.size()) {
      out += param;
    } else {
      out += param.substr(0, eq + 1);
      out += "[REDACTED]";
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace airlock::http
