// Fuzzes the request path normaliser rules are judged by: never a crash; a path it
// accepts comes out in normal form (starts with "/", no empty, "." or ".." segment, no
// query, an escape only for a reserved byte, upper-case), normalising it again changes
// nothing, and it is a usable glob of itself that matches itself.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/http_path.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace airlock::policy;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto normal = normalize_path(text);
  if (normal) {
    const std::string& p = *normal;
    if (p.empty() || p.front() != '/' || p.find("//") != std::string::npos || p.find('?') != std::string::npos)
      __builtin_trap();
    for (std::string_view bad : {"/./", "/../"})
      if (p.find(bad) != std::string::npos) __builtin_trap();
    if (p.ends_with("/.") || p.ends_with("/..")) __builtin_trap();
    for (std::size_t i = p.find('%'); i != std::string::npos; i = p.find('%', i + 1)) {
      if (i + 2 >= p.size()) __builtin_trap();
      for (char h : {p[i + 1], p[i + 2]})
        if (!((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'))) __builtin_trap();
    }
    auto again = normalize_path(p);
    if (!again || *again != p) __builtin_trap();
    if (p.size() <= 1024 && p.find_first_of("*?") == std::string::npos) {
      if (!check_path_glob(p).empty() || !path_glob_matches(p, p)) __builtin_trap();
    }
  }
  // The input as a glob: checking it never crashes, and matching stays bounded.
  (void)check_path_glob(text);
  if (normal && size < 512) (void)path_glob_matches(text, *normal);
  return 0;
}
