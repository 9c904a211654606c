// Writers for the proxy's side of a connection; see serialize.hpp.
#include "proxy/http/serialize.hpp"

namespace airlock::http {

namespace {

// A reason phrase is the proxy's own text; anything that could end the status line is
// dropped all the same.
std::string clean_phrase(std::string_view phrase) {
  std::string out;
  out.reserve(phrase.size());
  for (char c : phrase)
    if (c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f)) out.push_back(c);
  return out;
}

}  // namespace

std::string serialize_request_head(const RequestHead& head) {
  std::string out;
  out.reserve(64 + head.target.size() + 32 * head.headers.size());
  out += head.method;
  out += ' ';
  out += head.target;
  out += head.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  for (const Header& header : head.headers) {
    out += header.name;
    out += ": ";
    out += header.value;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

std::string serialize_response_head(const ResponseHead& head) {
  std::string out;
  out.reserve(64 + 32 * head.headers.size());
  out += head.version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(head.status);
  out += ' ';
  out += clean_phrase(head.reason);
  out += "\r\n";
  for (const Header& header : head.headers) {
    out += header.name;
    out += ": ";
    out += header.value;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

std::string chunk_frame(std::span<const std::uint8_t> data) {
  if (data.empty()) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string size;
  for (std::size_t n = data.size(); n > 0; n >>= 4) size.insert(size.begin(), kHex[n & 0xF]);
  std::string out;
  out.reserve(size.size() + data.size() + 4);
  out += size;
  out += "\r\n";
  out.append(reinterpret_cast<const char*>(data.data()), data.size());
  out += "\r\n";
  return out;
}

std::string last_chunk() { return "0\r\n\r\n"; }

std::string error_response(int status, std::string_view reason_phrase, const nlohmann::json& body,
                           bool close) {
  std::string payload = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  payload += '\n';
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + clean_phrase(reason_phrase) + "\r\n";
  out += "Content-Type: application/json\r\n";
  out += "Content-Length: " + std::to_string(payload.size()) + "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  out += payload;
  return out;
}

}  // namespace airlock::http
