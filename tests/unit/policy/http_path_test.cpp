// Request path normal form: every spelling of a path an origin serves as that path
// normalises to it, what can't be judged safely is refused with its reason, and globs.
#include <doctest/doctest.h>

#include "policy/http_path.hpp"

using namespace airlock::policy;

namespace {

std::string norm(std::string_view in) {
  auto r = normalize_path(in);
  REQUIRE_MESSAGE(r.ok(), in, ": ", (r.ok() ? "" : r.error()));
  return *r;
}

std::string refused(std::string_view in) {
  auto r = normalize_path(in);
  REQUIRE_MESSAGE(!r.ok(), in, " was accepted as ", (r.ok() ? *r : ""));
  return r.error();
}

}  // namespace

TEST_CASE("http path: the spellings of /b are /b") {
  for (const char* spelling : {"/b", "/a/../b", "/%62", "//b", "/./b", "/a/%2e%2e/b", "/a/%2E%2E/b", "/a/.%2e/b",
                               "/a%2F..%2Fb", "///a//..//b", "/b?x=/../c", "/x/y/../../b", "/%2Fb"}) {
    CAPTURE(spelling);
    CHECK(norm(spelling) == "/b");
  }
}

TEST_CASE("http path: escapes, slashes and segments") {
  CHECK(norm("/") == "/");
  CHECK(norm("/a/") == "/a/");
  CHECK(norm("/a//") == "/a/");
  CHECK(norm("/a/.") == "/a/");
  CHECK(norm("/a/b/..") == "/a/");
  CHECK(norm("/a/..") == "/");
  CHECK(norm("/%7euser/%41%2d%5F") == "/~user/A-_");
  CHECK(norm("/a%20b/%3f/%2a") == "/a%20b/%3F/%2A");  // reserved and others stay escaped
  CHECK(norm("/%25%32%46") == "/%252F");  // decoded once: %25 stays, so no double decoding
  CHECK(norm("/repo.git/info/refs?service=git-upload-pack") == "/repo.git/info/refs");
  CHECK(norm("/a;v=1/b") == "/a;v=1/b");
  CHECK(norm("/...") == "/...");
}

TEST_CASE("http path: what can't be judged safely is refused, with why") {
  CHECK(refused("").find("start with /") != std::string::npos);
  CHECK(refused("a/b").find("start with /") != std::string::npos);
  CHECK(refused("*").find("start with /") != std::string::npos);
  CHECK(refused("http://h/a").find("start with /") != std::string::npos);
  CHECK(refused("/..").find("above the root") != std::string::npos);
  CHECK(refused("/a/../../b").find("above the root") != std::string::npos);
  CHECK(refused("/%2e%2e/etc").find("above the root") != std::string::npos);
  CHECK(refused("/a%2F..%2F..%2Fb").find("above the root") != std::string::npos);
  CHECK(refused("/a\\b").find("backslash") != std::string::npos);
  CHECK(refused("/a%5cb").find("backslash") != std::string::npos);
  CHECK(refused("/a%00b").find("NUL") != std::string::npos);
  CHECK(refused("/a%").find("malformed") != std::string::npos);
  CHECK(refused("/a%4").find("malformed") != std::string::npos);
  CHECK(refused("/a%zz").find("malformed") != std::string::npos);
  CHECK(refused("/a#frag").find("fragment") != std::string::npos);
  CHECK(refused("/a b").find("0x20") != std::string::npos);
  CHECK(refused("/a\tb").find("0x09") != std::string::npos);
  CHECK(refused("/caf\xc3\xa9").find("0xC3") != std::string::npos);
  CHECK(refused("/" + std::string(kMaxPathBytes, 'a')).find("longer") != std::string::npos);
}

TEST_CASE("http path: normalising twice changes nothing") {
  for (const char* p : {"/a/../b/", "/%7e/%3f", "//x//y/./z/..", "/a%2Fb"}) {
    const std::string once = norm(p);
    CHECK(norm(once) == once);
  }
}

TEST_CASE("http path: globs") {
  CHECK(path_glob_matches("/*/info/refs", "/owner/repo.git/info/refs"));
  CHECK(path_glob_matches("/*/git-upload-pack", "/o/r/git-upload-pack"));
  CHECK_FALSE(path_glob_matches("/*/git-upload-pack", "/o/r/git-receive-pack"));
  CHECK(path_glob_matches("/v1/*", "/v1/"));
  CHECK(path_glob_matches("/v1/*", "/v1/chat/completions"));
  CHECK_FALSE(path_glob_matches("/v1/*", "/v1"));
  CHECK(path_glob_matches("/a?c", "/abc"));
  CHECK_FALSE(path_glob_matches("/a?c", "/ac"));
  CHECK(path_glob_matches("*", "/anything"));
  CHECK(path_glob_matches("/exact", "/exact"));
  CHECK_FALSE(path_glob_matches("/exact", "/exact/"));
  CHECK(path_glob_matches("/a*b*c", "/aXbYbZc"));
  CHECK_FALSE(path_glob_matches("/a*b*c", "/aXbYbZ"));
  // A long near-miss stays cheap (one backtrack point).
  CHECK_FALSE(path_glob_matches("/*a*a*a*a*a*b", "/" + std::string(4000, 'a')));
}

TEST_CASE("http path: a glob must be in normal form") {
  CHECK(check_path_glob("/*/info/refs").empty());
  CHECK(check_path_glob("/v1/chat/*").empty());
  CHECK(check_path_glob("/a?c").empty());
  CHECK(check_path_glob("/").empty());
  CHECK(check_path_glob("v1/*").find("starts with /") != std::string::npos);
  CHECK(check_path_glob("").find("starts with /") != std::string::npos);
  CHECK(check_path_glob("/a/../b").find("normal form") != std::string::npos);
  CHECK(check_path_glob("//a").find("normal form") != std::string::npos);
  CHECK(check_path_glob("/%62").find("normal form") != std::string::npos);
  CHECK(check_path_glob("/a%3fb").find("normal form") != std::string::npos);
  CHECK(check_path_glob("/a\\b").find("backslash") != std::string::npos);
}
