// Tests for the image store: manifest parsing (malformed input gives an error, never a
// crash), list/find/remove on a temporary airlock home, and rebuild-on-recipe-change,
// driven by a fake build script that records each build in a counter file.
#include "images/image_store.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;
using airlock::images::BuildOptions;
using airlock::images::ImageStore;
using airlock::images::parse_manifest;

namespace {

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');

// A fresh directory under the system temp dir, removed with the object.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "airlock-images-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string manifest(const std::string& name, const std::string& hash) {
  return R"({"name":")" + name + R"(","recipe_hash":")" + hash +
         R"(","kernel_version":"6.1.0-56-amd64","created":1700000000,"size_bytes":123})";
}

void make_image(const fs::path& home, const std::string& name, const std::string& hash) {
  const fs::path dir = home / "images" / name;
  write_file(dir / "manifest.json", manifest(name, hash));
  write_file(dir / "vmlinuz", "k");
  write_file(dir / "initramfs.cpio.gz", "i");
  write_file(dir / "rootfs.img", "r");
}

// A stand-in for build-image. Its recipe hash is the sha256 of the init binary, or the
// content of a "hash" file next to it; a build writes a complete image with that hash
// and appends to "builds".
fs::path fake_build_script(const fs::path& dir, const std::string& hash = {}) {
  if (!hash.empty()) write_file(dir / "hash", hash + "\n");
  const fs::path script = dir / "build-image";
  write_file(script, R"(#!/bin/sh
set -eu
here=$(dirname "$0")
case "$1" in
  --print-recipe-hash) init=$3 ;;
  *) init=$6 ;;
esac
if [ -f "$here/hash" ]; then
  hash=$(cat "$here/hash")
else
  hash=$(sha256sum <"$init" | cut -c1-64)
fi
case "$1" in --print-recipe-hash) echo x >>"$here/hash-calls"; echo "$hash"; exit 0 ;; esac
name=$2 out=$4
[ -f "$here/fail" ] && { echo "build-image: error: told to fail" >&2; exit 3; }
echo "[1/1] fake build of $name"
mkdir -p "$out"
printf k >"$out/vmlinuz"; printf i >"$out/initramfs.cpio.gz"; printf r >"$out/rootfs.img"
printf '{"name":"%s","recipe_hash":"%s","kernel_version":"6.1.0-test","created":1,"size_bytes":3}' \
  "$name" "$hash" >"$out/manifest.json"
echo x >>"$here/builds"
)");
  ::chmod(script.c_str(), 0755);
  write_file(dir / "airlock-init", "init");
  return script;
}

int count_lines(const fs::path& file) {
  const std::string s = read_file(file);
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}
int builds(const fs::path& dir) { return count_lines(dir / "builds"); }

}  // namespace

TEST_CASE("a well-formed manifest parses, with paths rooted at the image dir") {
  auto info = parse_manifest(manifest("default", kHashA), "/h/images/default");
  REQUIRE(info.ok());
  CHECK(info->name == "default");
  CHECK(info->recipe_hash == kHashA);
  CHECK(info->kernel_version == "6.1.0-56-amd64");
  CHECK(info->created == 1700000000);
  CHECK(info->size_bytes == 123);
  CHECK(info->kernel == fs::path("/h/images/default/vmlinuz"));
  CHECK(info->initramfs == fs::path("/h/images/default/initramfs.cpio.gz"));
  CHECK(info->rootfs == fs::path("/h/images/default/rootfs.img"));
}

TEST_CASE("malformed manifests give a clear error") {
  struct Case {
    std::string text, error;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {"{\"name\":", "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {"{}", "missing field \"name\""},
      {R"({"name":7})", "field \"name\" is not a string"},
      {R"({"name":"../x"})", "not a valid image name"},
      {R"({"name":"default"})", "missing field \"recipe_hash\""},
      {R"({"name":"default","recipe_hash":"abc"})", "not a sha256"},
      {R"({"name":"default","recipe_hash":")" + kHashA + R"("})",
       "missing field \"kernel_version\""},
      {R"({"name":"default","recipe_hash":")" + kHashA +
           R"(","kernel_version":"v","created":"yesterday","size_bytes":1})",
       "field \"created\" is not an integer"},
      {R"({"name":"default","recipe_hash":")" + kHashA +
           R"(","kernel_version":"v","created":1,"size_bytes":-5})",
       "negative"},
      {R"({"name":"default","recipe_hash":")" + kHashA +
           R"(","kernel_version":"v","created":1,"size_bytes":1e3})",
       "field \"size_bytes\" is not an integer"},
      {R"({"name":"default","recipe_hash":")" + kHashA +
           R"(","kernel_version":"v","created":1,"size_bytes":18446744073709551615})",
       "field \"size_bytes\" is not an integer"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto info = parse_manifest(c.text, "/h/images/default");
    REQUIRE_FALSE(info.ok());
    CHECK(info.error().find(c.error) != std::string::npos);
  }
}

TEST_CASE("image names cannot leave the images directory") {
  using airlock::images::is_valid_image_name;
  CHECK(is_valid_image_name("default"));
  CHECK(is_valid_image_name("py3.11-slim_2"));
  CHECK_FALSE(is_valid_image_name(""));
  CHECK_FALSE(is_valid_image_name(".."));
  CHECK_FALSE(is_valid_image_name(".default"));
  CHECK_FALSE(is_valid_image_name("a/b"));
  CHECK_FALSE(is_valid_image_name("Default"));
  CHECK_FALSE(is_valid_image_name(std::string(65, 'a')));
}

TEST_CASE("list, find and remove on a temporary home") {
  TempDir home;
  ImageStore store(home.path);
  CHECK(store.list().empty());
  CHECK_FALSE(store.find("default"));

  make_image(home.path, "default", kHashA);
  make_image(home.path, "another", kHashB);
  // Broken entries are left out of list(); load() explains them.
  write_file(home.path / "images" / "broken" / "manifest.json", "{\"name\":");
  make_image(home.path, "partial", kHashA);
  fs::remove(home.path / "images" / "partial" / "rootfs.img");
  make_image(home.path, "renamed", kHashA);
  write_file(home.path / "images" / "renamed" / "manifest.json", manifest("other", kHashA));
  fs::create_directories(home.path / "images" / ".default.building.x");

  auto all = store.list();
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "another");
  CHECK(all[1].name == "default");

  auto found = store.find("default");
  REQUIRE(found);
  CHECK(found->dir == home.path / "images" / "default");
  CHECK(found->recipe_hash == kHashA);
  CHECK(found->vmlinux.empty());
  write_file(home.path / "images" / "default" / "vmlinux", "elf");
  CHECK(store.find("default")->vmlinux == home.path / "images" / "default" / "vmlinux");

  auto broken = store.load("broken");
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.error().find("manifest.json: not valid JSON") != std::string::npos);
  auto partial = store.load("partial");
  REQUIRE_FALSE(partial.ok());
  CHECK(partial.error().find("rootfs.img is missing") != std::string::npos);
  auto renamed = store.load("renamed");
  REQUIRE_FALSE(renamed.ok());
  CHECK(renamed.error().find("expected 'renamed'") != std::string::npos);
  CHECK(store.load("missing").error().find("not built") != std::string::npos);

  auto removed = store.remove("default");
  REQUIRE(removed.ok());
  CHECK(*removed);
  CHECK_FALSE(fs::exists(home.path / "images" / "default"));
  auto again = store.remove("default");
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  CHECK_FALSE(store.remove("../images").ok());
}

TEST_CASE("ensure builds when missing, reuses a matching image, rebuilds on a new recipe") {
  TempDir home;
  TempDir tools;
  ImageStore store(home.path);
  BuildOptions options;
  options.build_script = fake_build_script(tools.path);
  options.init = tools.path / "airlock-init";
  options.work_dir = home.path / "work";
  options.apt_lists = tools.path / "apt-lists";  // not the host's: apt may touch that
  write_file(options.apt_lists, "lists");
  std::vector<std::string> lines;
  options.progress = [&](std::string_view line) { lines.emplace_back(line); };

  auto hash = store.recipe_hash("default", options);
  REQUIRE(hash.ok());
  CHECK(hash->size() == 64);

  auto first = store.ensure("default", options);
  REQUIRE_MESSAGE(first.ok(), (first.ok() ? "" : first.error()));
  CHECK(first->recipe_hash == *hash);
  CHECK(builds(tools.path) == 1);
  REQUIRE(lines.size() >= 2);
  CHECK(lines[0] == "image 'default' not built yet: building it");
  CHECK(lines[1] == "[1/1] fake build of default");

  const int hash_calls = count_lines(tools.path / "hash-calls");
  auto second = store.ensure("default", options);
  REQUIRE(second.ok());
  CHECK(builds(tools.path) == 1);  // same recipe: no rebuild
  // Unchanged script and init: the cached recipe hash is used, apt-cache is not run.
  CHECK(count_lines(tools.path / "hash-calls") == hash_calls);

  // A new init binary is a new recipe.
  write_file(options.init, "a new init");
  auto third = store.ensure("default", options);
  REQUIRE(third.ok());
  CHECK(third->recipe_hash != *hash);
  CHECK(builds(tools.path) == 2);
  auto fourth = store.ensure("default", options);
  REQUIRE(fourth.ok());
  CHECK(builds(tools.path) == 2);

  options.force = true;
  REQUIRE(store.ensure("default", options).ok());
  CHECK(builds(tools.path) == 3);

  // A file gone from the store: an error naming it and the way to rebuild, no build
  // behind the user's back; `repair` (airlock image build) rebuilds it.
  options.force = false;
  fs::remove(home.path / "images" / "default" / "vmlinuz");
  auto broken = store.ensure("default", options);
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.error().find("vmlinuz is missing") != std::string::npos);
  CHECK(broken.error().find("airlock image build") != std::string::npos);
  CHECK(builds(tools.path) == 3);
  options.repair = true;
  REQUIRE(store.ensure("default", options).ok());
  CHECK(builds(tools.path) == 4);
}

TEST_CASE("ensure reports a failed build and unknown recipes") {
  TempDir home;
  TempDir tools;
  ImageStore store(home.path);
  BuildOptions options;
  options.build_script = fake_build_script(tools.path, kHashA);
  options.init = tools.path / "airlock-init";
  options.progress = [](std::string_view) {};

  write_file(tools.path / "fail", "");
  auto failed = store.ensure("default", options);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().find("failed (exit 3)") != std::string::npos);
  CHECK(failed.error().find("told to fail") != std::string::npos);
  CHECK_FALSE(store.find("default"));

  auto unknown = store.ensure("ubuntu", options);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().find("known recipes: default") != std::string::npos);
}

TEST_CASE("ensure falls back to an existing image when the recipe can't be computed") {
  TempDir home;
  TempDir tools;
  ImageStore store(home.path);
  BuildOptions options;
  options.build_script = fake_build_script(tools.path, "not-a-hash");
  options.init = tools.path / "airlock-init";
  options.progress = [](std::string_view) {};
  CHECK_FALSE(store.ensure("default", options).ok());
  make_image(home.path, "default", kHashA);
  auto existing = store.ensure("default", options);
  REQUIRE(existing.ok());
  CHECK(existing->recipe_hash == kHashA);
  CHECK(builds(tools.path) == 0);
}

TEST_CASE("a build script that prints garbage as its hash is refused") {
  TempDir home;
  TempDir tools;
  ImageStore store(home.path);
  BuildOptions options;
  options.build_script = fake_build_script(tools.path, "not-a-hash");
  options.init = tools.path / "airlock-init";
  auto hash = store.recipe_hash("default", options);
  REQUIRE_FALSE(hash.ok());
  CHECK(hash.error().find("no sha256 digest") != std::string::npos);
}

TEST_CASE("find_runtime_file honours AIRLOCK_LIBEXEC") {
  TempDir dir;
  write_file(dir.path / "build-image", "#!/bin/sh\n");
  ::setenv("AIRLOCK_LIBEXEC", dir.path.c_str(), 1);
  auto found = airlock::images::find_runtime_file("build-image");
  ::unsetenv("AIRLOCK_LIBEXEC");
  REQUIRE(found);
  CHECK(*found == dir.path / "build-image");
  CHECK_FALSE(airlock::images::find_runtime_file("no-such-runtime-file-xyz"));
}
