// The image store: built guest images under <airlock home>/images/<name>/, each holding
// vmlinuz, initramfs.cpio.gz, rootfs.img (read-only raw ext4 base) and manifest.json,
// and usually vmlinux (the same kernel uncompressed, for PVH boot).
//
// Images are made by the build-image script (images/build-image); the store runs it when
// an image is missing or its recipe hash (which the script computes over itself, its
// package list, the kernel package version and the guest init binary) has changed.
// manifest.json is read as untrusted text: a truncated or hand-edited manifest is an
// error naming the file and the field, never a crash. Image names are restricted to a
// safe character set so a name can never climb out of the images directory.
// Limits: one recipe ("default") exists; building needs root (see images/README.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace airlock::images {

struct ImageInfo {
  std::string name;
  std::filesystem::path dir, kernel, initramfs, rootfs;
  // The uncompressed ELF kernel, booted through QEMU's PVH entry (no in-guest
  // decompression: seconds faster under TCG). Empty when the image has none.
  std::filesystem::path vmlinux;
  std::string kernel_version;
  std::string recipe_hash;
  std::int64_t created = 0;  // unix seconds
  std::uint64_t size_bytes = 0;
};

struct BuildOptions {
  std::filesystem::path build_script;  // empty: find_runtime_file("build-image")
  std::filesystem::path init;          // empty: find_runtime_file("airlock-init")
  std::filesystem::path work_dir;      // empty: <home>/tmp (large: kernel .deb, root tree)
  // Called with each line the build prints; empty: the build inherits stdout/stderr.
  std::function<void(std::string_view line)> progress;
  bool force = false;  // rebuild even if the recipe hash matches
  bool repair = false; // rebuild a broken image (airlock image build) rather than refuse it
  // apt's package lists: their mtime is part of the cheap recipe fingerprint (tests
  // point it at a file of their own).
  std::filesystem::path apt_lists = "/var/lib/apt/lists";
};

// Recipes build-image knows how to build.
const std::vector<std::string>& known_recipes();

// [a-z0-9][a-z0-9._-]{0,63}: no path separators, no leading dot.
bool is_valid_image_name(std::string_view name);

// Parses manifest.json text for the image in dir; fills the file paths from dir.
Result<ImageInfo> parse_manifest(std::string_view text, const std::filesystem::path& dir);

// A file shipped next to the airlock binary: $AIRLOCK_LIBEXEC/<name>, then, relative to
// the running executable's directory, ../share/airlock/, share/airlock/, ./, guest-init/
// (the build tree's layout) and ../libexec/airlock/.
std::optional<std::filesystem::path> find_runtime_file(std::string_view name);

class ImageStore {
 public:
  explicit ImageStore(std::filesystem::path home);

  const std::filesystem::path& images_dir() const { return images_dir_; }

  // Complete, well-formed images, sorted by name. Broken ones are left out; load() says
  // why.
  std::vector<ImageInfo> list() const;
  std::optional<ImageInfo> find(const std::string& name) const;
  // The image's manifest, checked, with its files present; or why not.
  Result<ImageInfo> load(const std::string& name) const;

  // The image, built first when missing or built from another recipe; a broken one (its
  // directory there, a file or the manifest not) is an error naming what is wrong, unless
  // `repair` (airlock image build) asks for it to be rebuilt. When the recipe can't be computed (no
  // build script or init binary, apt-cache failing) an existing image is returned as is.
  Result<ImageInfo> ensure(const std::string& name, const BuildOptions& options);
  // Removes the image directory. Returns false if there was none.
  Result<bool> remove(const std::string& name);
  // The recipe hash the build script would give this image now.
  Result<std::string> recipe_hash(const std::string& name, const BuildOptions& options) const;

 private:
  std::filesystem::path home_;
  std::filesystem::path images_dir_;
};

}  // namespace airlock::images
