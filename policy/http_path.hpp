// HTTP request paths as rules see them: one normal form, and globs over it.
//
// A rule on "/b" must hold for every spelling of "/b" an origin would serve as "/b":
// "/a/../b", "/%62", "//b", "/a/%2e%2e/b". normalize_path() gives the form rules are
// matched against (the request itself is forwarded as the guest wrote it):
//   - the query ("?..." on) is not part of the path;
//   - percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded, and so
//     is %2F: an origin that reads it as a separator sees what the rule saw, and one
//     that does not serves a path the rule judged more strictly, never less. Every other
//     escape is kept, with its hex digits upper-cased;
//   - runs of slashes become one, "." segments go, ".." removes the segment before it
//     (after decoding, so "%2e%2e" is "..").
// Refused, with the reason, because origins disagree on what they mean or they are not
// a path at all: not starting with "/", a fragment, a malformed escape, an escaped NUL,
// a backslash (raw or %5C: some origins read it as a slash), bytes outside printable
// ASCII, a ".." above the root, and paths over kMaxPathBytes. Matrix parameters (";x")
// stay part of their segment.
//
// Globs (path_glob_matches): "*" matches any run of characters, "/" included (a rule
// "/*/info/refs" covers "/owner/repo.git/info/refs"); "?" one character; everything
// else itself. A glob is written in normal form (check_path_glob says when it is not).
// Pure logic: no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace airlock::policy {

inline constexpr std::size_t kMaxPathBytes = 8192;

// The normal form of a request target's path (origin-form: "/path?query"), or why it
// can't be judged safely.
Result<std::string> normalize_path(std::string_view target);

// Whether a normalised path matches a glob.
bool path_glob_matches(std::string_view glob, std::string_view path);

// Empty when `glob` is a usable path glob (starts with "/", is its own normal form with
// "*" and "?" allowed); otherwise what is wrong with it.
std::string check_path_glob(std::string_view glob);

}  // namespace airlock::policy
