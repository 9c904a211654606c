// Whole-tree transfers on the control channel (file.upload, file.download): the entry
// vocabulary both ends share.
//
// Theory of operation: a tree travels as a sequence of entries on one request channel,
// each a CONTROL frame {"op":"entry","path":REL,"type":"dir|file|symlink",...}; a file
// entry is followed by file_data frames carrying exactly its size, then an empty
// file_data frame. REL is relative to the tree's root, pre-order (a directory before
// what it holds), and the receiver resolves it beneath a root it holds open, following
// no symlink on the way (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a symlink entry
// is recreated as a link, never followed, so a tree can't write outside its root however
// its links point or whatever the other side planted in the destination.
//
// Refuses: absolute paths, empty, "." or ".." components, NUL, paths of PATH_MAX or
// more, deeper than kMaxTreeDepth, symlink targets with NUL or of PATH_MAX or more, and
// modes beyond 0777 (set-id and sticky bits are not carried). Sizes above kMaxEntrySize.
// Pure: parsing never throws; an invalid entry is an error string, the caller refuses it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/messages.hpp"

namespace airlock::protocol {

inline constexpr std::size_t kMaxTreeDepth = 256;
inline constexpr std::uint64_t kMaxEntrySize = 1ULL << 30;  // the file.write cap
inline constexpr std::size_t kMaxPathBytes = 4095;          // PATH_MAX - 1

enum class EntryType { dir, file, symlink };

struct TreeEntry {
  std::string path;            // relative, validated; "" is the root itself (dir only)
  EntryType type = EntryType::file;
  std::uint32_t mode = 0644;   // permission bits, 0..0777
  std::uint64_t size = 0;      // file only
  std::int64_t mod_time = 0;   // unix seconds; 0 = leave the receiver's
  std::string target;          // symlink only
};

// A relative path made of plain components ("a/b/c"), or "" for the root.
bool is_safe_relative_path(std::string_view path);
// The parts of a safe relative path: "a/b/c" -> "a/b" and "c"; "c" -> "" and "c".
std::string parent_of_entry(const std::string& rel);
std::string name_of_entry(const std::string& rel);
// "dir", "file", "symlink".
std::string_view entry_type_name(EntryType type);

// {"op":"entry",...} for an entry (the caller has validated it or built it itself).
Json entry_message(const TreeEntry& entry);
// The entry in an {"op":"entry"} message, or why it is refused.
std::variant<TreeEntry, std::string> parse_entry(const Json& message);

// Counts carried by the final reply of a transfer ({"op":"ok"} / {"op":"end"}).
struct TreeCounts {
  std::uint64_t files = 0, dirs = 0, symlinks = 0, bytes = 0, skipped = 0;
};
Json counts_json(const TreeCounts& counts);
TreeCounts parse_counts(const Json& message);

}  // namespace airlock::protocol
