// Header helpers; see message.hpp.
#include "proxy/http/message.hpp"

#include <algorithm>

namespace airlock::http {

namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

const Header* find_header(const std::vector<Header>& headers, std::string_view name) {
  for (const Header& header : headers)
    if (iequals(header.name, name)) return &header;
  return nullptr;
}

std::size_t remove_headers(std::vector<Header>& headers, std::string_view name) {
  const auto before = headers.size();
  std::erase_if(headers, [&](const Header& header) { return iequals(header.name, name); });
  return before - headers.size();
}

void set_header(std::vector<Header>& headers, std::string_view name, std::string_view value) {
  auto first = std::find_if(headers.begin(), headers.end(),
                            [&](const Header& header) { return iequals(header.name, name); });
  if (first == headers.end()) {
    headers.push_back({std::string(name), std::string(value)});
    return;
  }
  const auto index = first - headers.begin();
  first->name = std::string(name);
  first->value = std::string(value);
  auto rest = std::remove_if(headers.begin() + index + 1, headers.end(),
                             [&](const Header& header) { return iequals(header.name, name); });
  headers.erase(rest, headers.end());
}

}  // namespace airlock::http
