// Tree-transfer entries: which paths are safe, and what a bad entry is refused for.
#include <doctest/doctest.h>

#include "protocol/tree.hpp"

using namespace airlock::protocol;

TEST_CASE("tree: only plain relative paths are safe") {
  CHECK(is_safe_relative_path(""));
  CHECK(is_safe_relative_path("a"));
  CHECK(is_safe_relative_path("a/b/c.txt"));
  CHECK(is_safe_relative_path(".hidden/x"));
  CHECK(is_safe_relative_path("a..b"));
  CHECK_FALSE(is_safe_relative_path("/etc/passwd"));
  CHECK_FALSE(is_safe_relative_path("../x"));
  CHECK_FALSE(is_safe_relative_path("a/../../x"));
  CHECK_FALSE(is_safe_relative_path("a/./b"));
  CHECK_FALSE(is_safe_relative_path("a//b"));
  CHECK_FALSE(is_safe_relative_path("a/"));
  CHECK_FALSE(is_safe_relative_path("."));
  CHECK_FALSE(is_safe_relative_path(std::string("a\0b", 3)));
  CHECK_FALSE(is_safe_relative_path(std::string(5000, 'a')));
  std::string deep;
  for (std::size_t i = 0; i <= kMaxTreeDepth; ++i) deep += (deep.empty() ? "d" : "/d");
  CHECK_FALSE(is_safe_relative_path(deep));
}

TEST_CASE("tree: entries round-trip through their message") {
  TreeEntry file{"src/main.py", EntryType::file, 0755, 12, 1700000000, ""};
  auto parsed = parse_entry(entry_message(file));
  REQUIRE(std::holds_alternative<TreeEntry>(parsed));
  const auto& f = std::get<TreeEntry>(parsed);
  CHECK(f.path == "src/main.py");
  CHECK(f.type == EntryType::file);
  CHECK(f.mode == 0755);
  CHECK(f.size == 12);
  CHECK(f.mod_time == 1700000000);

  TreeEntry link{"lib", EntryType::symlink, 0, 0, 0, "../../etc"};
  auto l = parse_entry(entry_message(link));
  REQUIRE(std::holds_alternative<TreeEntry>(l));
  CHECK(std::get<TreeEntry>(l).target == "../../etc");  // a link's target is data, never followed

  TreeEntry root{"", EntryType::dir, 0700, 0, 0, ""};
  CHECK(std::holds_alternative<TreeEntry>(parse_entry(entry_message(root))));
}

TEST_CASE("tree: bad entries are refused with a reason") {
  auto refused = [](const Json& m) {
    auto r = parse_entry(m);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string();
  };
  CHECK(refused({{"op", "entry"}, {"path", "../x"}, {"type", "file"}, {"mode", 420}, {"size", 1}}).find("unsafe") !=
        std::string::npos);
  CHECK_FALSE(refused({{"op", "entry"}, {"path", 7}, {"type", "file"}}).empty());
  CHECK_FALSE(refused({{"op", "entry"}, {"path", "a"}, {"type", "fifo"}, {"mode", 420}}).empty());
  CHECK_FALSE(refused({{"op", "entry"}, {"path", "a"}, {"type", "file"}, {"mode", 04755}, {"size", 1}}).empty());
  CHECK_FALSE(refused({{"op", "entry"}, {"path", "a"}, {"type", "file"}, {"mode", 420}, {"size", -1}}).empty());
  CHECK_FALSE(refused({{"op", "entry"}, {"path", "a"}, {"type", "file"}, {"mode", 420}, {"size", (1ULL << 30) + 1}})
                  .empty());
  CHECK_FALSE(refused({{"op", "entry"}, {"path", "a"}, {"type", "symlink"}}).empty());
  CHECK_FALSE(refused({{"op", "entry"}, {"path", "a"}, {"type", "symlink"}, {"target", ""}}).empty());
  CHECK_FALSE(refused({{"op", "entry"}, {"path", "", }, {"type", "file"}, {"mode", 420}, {"size", 0}}).empty());
  CHECK_FALSE(refused({{"op", "entry"}, {"path", "a"}, {"type", "dir"}, {"mode", 493}, {"mod_time", "x"}}).empty());
}

TEST_CASE("tree: counts") {
  TreeCounts c{3, 2, 1, 100, 4};
  TreeCounts back = parse_counts(counts_json(c));
  CHECK(back.files == 3);
  CHECK(back.dirs == 2);
  CHECK(back.symlinks == 1);
  CHECK(back.bytes == 100);
  CHECK(back.skipped == 4);
  CHECK(parse_counts(Json{{"files", -3}, {"dirs", "x"}}).files == 0);
}
