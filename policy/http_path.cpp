// Request path normal form and globs; see http_path.hpp.
#include "policy/http_path.hpp"

#include <cstdio>
#include <vector>

#include "policy/url.hpp"

namespace airlock::policy {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string byte_text(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", c);
  return buf;
}

}  // namespace

Result<std::string> normalize_path(std::string_view target) {
  if (target.size() > kMaxPathBytes) return Error{"the path is longer than " + std::to_string(kMaxPathBytes) + " bytes"};
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/') return Error{"the path does not start with /"};

  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    const auto c = static_cast<unsigned char>(path[i]);
    if (c == '#') return Error{"a fragment (#) is not part of a request path"};
    if (c == '\\') return Error{"a backslash in the path (some origins read it as /)"};
    if (c < 0x21 || c > 0x7e) return Error{"byte " + byte_text(c) + " in the path is not printable ASCII"};
    if (c != '%') {
      decoded += static_cast<char>(c);
      continue;
    }
    if (i + 2 >= path.size()) return Error{"a malformed percent-escape in the path"};
    const int hi = hex_value(path[i + 1]);
    const int lo = hex_value(path[i + 2]);
    if (hi < 0 || lo < 0) return Error{"a malformed percent-escape in the path"};
    const auto v = static_cast<unsigned char>(hi * 16 + lo);
    i += 2;
    if (v == 0) return Error{"an escaped NUL (%00) in the path"};
    if (v == '\\') return Error{"an escaped backslash (%5C) in the path (some origins read it as /)"};
    if (is_unreserved(v) || v == '/') {
      decoded += static_cast<char>(v);
    } else {
      decoded += '%';
      decoded += kHex[v >> 4];
      decoded += kHex[v & 15];
    }
  }

  // Segments: empty ones (runs of slashes) and "." dropped, ".." takes one back.
  std::vector<std::string_view> segments;
  bool trailing = false;
  const std::string_view d = decoded;
  std::size_t at = 1;
  while (at <= d.size()) {
    std::size_t end = d.find('/', at);
    if (end == std::string_view::npos) end = d.size();
    const std::string_view seg = d.substr(at, end - at);
    const bool last = end == d.size();
    if (seg == "..") {
      if (segments.empty()) return Error{"the path climbs above the root (..)"};
      segments.pop_back();
      trailing = last;
    } else if (seg == ".") {
      trailing = last;
    } else if (!seg.empty()) {
      segments.push_back(seg);
      trailing = false;
    } else {
      trailing = last;  // a slash at the end (or a run of them)
    }
    at = end + 1;
  }
  std::string out;
  out.reserve(decoded.size());
  for (const auto seg : segments) {
    out += '/';
    out += seg;
  }
  if (out.empty() || trailing) out += '/';
  return out;
}

bool path_glob_matches(std::string_view glob, std::string_view path) {
  // Greedy "*" with one backtrack point: linear in practice, O(|glob|*|path|) at worst.
  std::size_t g = 0, p = 0;
  std::size_t star = std::string_view::npos, star_p = 0;
  while (p < path.size()) {
    if (g < glob.size() && (glob[g] == '?' || glob[g] == path[p])) {
      ++g;
      ++p;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      star_p = p;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      p = ++star_p;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

std::string check_path_glob(std::string_view glob) {
  if (glob.empty() || glob.front() != '/') return "a path glob starts with /";
  if (glob.size() > 1024) return "a path glob is at most 1024 bytes";
  // The wildcards stand for path characters; the rest must already be in normal form,
  // or the glob could never match what it looks like it matches.
  std::string plain(glob);
  for (char& c : plain)
    if (c == '*' || c == '?') c = 'x';
  auto normal = normalize_path(plain);
  if (!normal) return normal.error();
  if (*normal != plain)
    return "not in normal form (rules match the normalised path: no \"//\", \".\" or \"..\" segments, "
           "unreserved characters and / not percent-escaped, escapes in upper case)";
  return "";
}

}  // namespace airlock::policy
