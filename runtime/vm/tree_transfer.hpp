// The host's side of whole-tree transfers (protocol/tree.hpp): reading a host folder into
// entries (for file.upload) and writing received entries into a host folder (for
// file.download), following no symlink on either side.
//
// TreeReader walks with openat(O_NOFOLLOW) from the root it holds open: a symlink in the
// source becomes a symlink entry, never a way out of the tree. TreeWriter creates the
// root (or reuses a directory already there; a symlink there is refused), resolves every
// entry's folder with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the root it
// holds, writes files to a temporary name and renames them into place, and recreates
// symlinks as symlinks. Directories are made 0700 while they fill and get their own
// mode and time at the end, so a read-only folder in the tree can still be filled by a
// user without root. Files land owned by the user running airlock. Devices, fifos and
// sockets in a source are skipped and counted; so are unreadable entries.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "protocol/tree.hpp"

namespace airlock::runtime {

class TreeReader {
 public:
  static Result<std::unique_ptr<TreeReader>> open(const std::filesystem::path& root);
  ~TreeReader();
  TreeReader(const TreeReader&) = delete;
  TreeReader& operator=(const TreeReader&) = delete;

  // The next entry in pre-order (the root first, as ""); nothing when the walk is done.
  // After a file entry, read its data with read() until it returns 0.
  std::optional<protocol::TreeEntry> next();
  // Bytes of the current file; 0 at its end (or on a read error: what was read stands).
  std::size_t read(char* buffer, std::size_t size);
  const protocol::TreeCounts& counts() const { return counts_; }

 private:
  TreeReader() = default;
  struct Level;
  std::vector<std::unique_ptr<Level>> stack_;
  int file_fd_ = -1;
  bool root_sent_ = false;
  protocol::TreeEntry root_;
  protocol::TreeCounts counts_;
};

class TreeWriter {
 public:
  // root: where the tree goes; made if missing (its parent must exist).
  static Result<std::unique_ptr<TreeWriter>> open(const std::filesystem::path& root);
  ~TreeWriter();  // discards a file in progress
  TreeWriter(const TreeWriter&) = delete;
  TreeWriter& operator=(const TreeWriter&) = delete;

  Result<bool> on_entry(const protocol::TreeEntry& entry);
  // Data of the current file entry; an empty view ends it.
  Result<bool> on_data(std::string_view bytes);
  // Applies directory modes and times; the counts of what was written.
  Result<protocol::TreeCounts> finish();

 private:
  TreeWriter() = default;
  Result<int> parent_of_entry(const std::string& rel);
  void discard_file();

  std::filesystem::path root_path_;
  int root_fd_ = -1;
  int file_fd_ = -1;
  int parent_fd_ = -1;
  std::string temp_;
  protocol::TreeEntry file_;
  std::uint64_t received_ = 0;
  std::uint64_t temp_counter_ = 0;
  struct DirAttr {
    std::string rel;
    std::uint32_t mode;
    std::int64_t mod_time;
  };
  std::vector<DirAttr> dirs_;
  protocol::TreeCounts counts_;
};

}  // namespace airlock::runtime
