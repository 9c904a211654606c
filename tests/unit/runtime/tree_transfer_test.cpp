// Host-side trees: a folder read and written back keeps files, modes and symlinks, and
// no link (in the source, the stream or the destination) leads outside the tree.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "runtime/vm/tree_transfer.hpp"
#include "tests/support/temp_dir.hpp"

using namespace airlock;
using namespace airlock::runtime;
namespace fs = std::filesystem;
using protocol::EntryType;
using protocol::TreeEntry;

namespace {

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Copies src into dst through the entry stream, as an upload followed by a download would.
protocol::TreeCounts copy_tree(const fs::path& src, const fs::path& dst) {
  auto reader = TreeReader::open(src);
  REQUIRE(reader.ok());
  auto writer = TreeWriter::open(dst);
  REQUIRE(writer.ok());
  char buf[7];  // small, to cross many chunk boundaries
  while (auto e = (*reader)->next()) {
    auto parsed = protocol::parse_entry(protocol::entry_message(*e));  // through the wire form
    REQUIRE(std::holds_alternative<TreeEntry>(parsed));
    REQUIRE((*writer)->on_entry(std::get<TreeEntry>(parsed)).ok());
    if (e->type == EntryType::file) {
      for (;;) {
        const std::size_t n = (*reader)->read(buf, sizeof buf);
        REQUIRE((*writer)->on_data(std::string_view(buf, n)).ok());
        if (n == 0) break;
      }
    }
  }
  auto done = (*writer)->finish();
  REQUIRE(done.ok());
  return *done;
}

}  // namespace

TEST_CASE("tree transfer: files, folders, modes and symlinks survive the trip") {
  test::TempDir dir;
  const fs::path src = dir.path() / "src", dst = dir.path() / "dst", outside = dir.path() / "outside";
  fs::create_directories(src / "sub/deeper");
  fs::create_directories(outside);
  write(src / "a.txt", "alpha");
  write(src / "sub/run.sh", "#!/bin/sh\necho hi\n");
  ::chmod((src / "sub/run.sh").c_str(), 0750);
  write(src / "sub/deeper/empty", "");
  fs::create_symlink("../a.txt", src / "sub/link");
  fs::create_symlink(outside, src / "escape");  // a link out of the tree stays a link
  ::chmod((src / "sub/deeper").c_str(), 0555);  // read-only, yet filled on the other side

  const auto counts = copy_tree(src, dst);
  CHECK(counts.files == 3);
  CHECK(counts.dirs == 2);
  CHECK(counts.symlinks == 2);
  CHECK(read(dst / "a.txt") == "alpha");
  CHECK(read(dst / "sub/run.sh") == "#!/bin/sh\necho hi\n");
  struct stat st {};
  REQUIRE(::stat((dst / "sub/run.sh").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0750);
  REQUIRE(::stat((dst / "sub/deeper").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0555);
  CHECK(fs::exists(dst / "sub/deeper/empty"));
  CHECK(fs::is_symlink(dst / "sub/link"));
  CHECK(fs::read_symlink(dst / "sub/link") == "../a.txt");
  CHECK(fs::is_symlink(dst / "escape"));
  CHECK(fs::is_empty(outside));
}

TEST_CASE("tree transfer: a stream can't climb out or go through a link it planted") {
  test::TempDir dir;
  const fs::path dst = dir.path() / "dst", outside = dir.path() / "outside";
  fs::create_directories(outside);
  auto writer = TreeWriter::open(dst);
  REQUIRE(writer.ok());
  TreeEntry link{"lib", EntryType::symlink, 0, 0, 0, outside.string()};
  REQUIRE((*writer)->on_entry(link).ok());
  TreeEntry through{"lib/owned.txt", EntryType::file, 0644, 1, 0, ""};
  auto refused = (*writer)->on_entry(through);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().find("symlink") != std::string::npos);
  TreeEntry climb{"../owned.txt", EntryType::file, 0644, 1, 0, ""};
  CHECK_FALSE((*writer)->on_entry(climb).ok());
  CHECK(fs::is_empty(outside));
}

TEST_CASE("tree transfer: a link already in the destination is replaced, never followed") {
  test::TempDir dir;
  const fs::path dst = dir.path() / "dst", outside = dir.path() / "outside";
  fs::create_directories(dst);
  fs::create_directories(outside);
  write(outside / "victim", "untouched");
  fs::create_symlink(outside / "victim", dst / "file");
  fs::create_symlink(outside, dst / "dir");
  auto writer = TreeWriter::open(dst);
  REQUIRE(writer.ok());
  REQUIRE((*writer)->on_entry({"file", EntryType::file, 0644, 3, 0, ""}).ok());
  REQUIRE((*writer)->on_data("new").ok());
  REQUIRE((*writer)->on_data("").ok());
  CHECK_FALSE((*writer)->on_entry({"dir/x", EntryType::file, 0644, 1, 0, ""}).ok());
  CHECK(read(outside / "victim") == "untouched");
  CHECK_FALSE(fs::is_symlink(dst / "file"));
  CHECK(read(dst / "file") == "new");
  CHECK(fs::directory_iterator(outside) != fs::directory_iterator());
  CHECK(std::distance(fs::directory_iterator(outside), fs::directory_iterator()) == 1);
}

TEST_CASE("tree transfer: the destination root itself may not be a symlink") {
  test::TempDir dir;
  fs::create_directories(dir.path() / "real");
  fs::create_symlink(dir.path() / "real", dir.path() / "link");
  auto writer = TreeWriter::open(dir.path() / "link");
  REQUIRE_FALSE(writer.ok());
  CHECK(writer.error().find("symlink") != std::string::npos);
}
