// Error-queue text for OpenSSL failures; see openssl_ptr.hpp.
#include "certs/openssl_ptr.hpp"

#include <openssl/err.h>

namespace airlock::certs {

std::string openssl_error() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!text.empty()) text += "; ";
    const char* reason = ERR_reason_error_string(code);
    text += reason != nullptr ? reason : buffer;
  }
  return text;
}

std::string openssl_error(const std::string& what) {
  std::string detail = openssl_error();
  return detail.empty() ? what : what + ": " + detail;
}

}  // namespace airlock::certs
