// Tree-transfer entries; see tree.hpp.
#include "protocol/tree.hpp"

namespace airlock::protocol {

std::string parent_of_entry(const std::string& rel) {
  const auto slash = rel.find_last_of('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

std::string name_of_entry(const std::string& rel) {
  const auto slash = rel.find_last_of('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

bool is_safe_relative_path(std::string_view path) {
  if (path.empty()) return true;
  if (path.size() > kMaxPathBytes || path.front() == '/' || path.back() == '/') return false;
  if (path.find('\0') != std::string_view::npos) return false;
  std::size_t depth = 0;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (++depth > kMaxTreeDepth) return false;
    start = end + 1;
  }
  return true;
}

std::string_view entry_type_name(EntryType type) {
  switch (type) {
    case EntryType::dir: return "dir";
    case EntryType::file: return "file";
    case EntryType::symlink: return "symlink";
  }
  return "file";
}

Json entry_message(const TreeEntry& e) {
  Json j = {{"op", "entry"}, {"path", e.path}, {"type", entry_type_name(e.type)}};
  if (e.type != EntryType::symlink) j["mode"] = e.mode;
  if (e.type == EntryType::file) j["size"] = e.size;
  if (e.type == EntryType::symlink) j["target"] = e.target;
  if (e.mod_time != 0) j["mod_time"] = e.mod_time;
  return j;
}

std::variant<TreeEntry, std::string> parse_entry(const Json& m) {
  TreeEntry e;
  const auto path = get_string(m, "path");
  if (!path) return std::string("entry without a string path");
  if (!is_safe_relative_path(*path)) return "unsafe entry path '" + path->substr(0, 256) + "'";
  e.path = *path;
  const auto type = get_string(m, "type");
  if (type == "dir") {
    e.type = EntryType::dir;
  } else if (type == "file") {
    e.type = EntryType::file;
  } else if (type == "symlink") {
    e.type = EntryType::symlink;
  } else {
    return std::string("entry type must be dir, file or symlink");
  }
  if (e.path.empty() && e.type != EntryType::dir) return std::string("the root entry must be a dir");
  if (e.type != EntryType::symlink) {
    const auto mode = get_int(m, "mode");
    if (!mode || *mode < 0 || *mode > 0777) return std::string("entry mode must be 0..0777");
    e.mode = static_cast<std::uint32_t>(*mode);
  }
  if (e.type == EntryType::file) {
    const auto size = get_int(m, "size");
    if (!size || *size < 0) return std::string("file entry needs a non-negative size");
    if (static_cast<std::uint64_t>(*size) > kMaxEntrySize) return std::string("files are limited to 1 GiB");
    e.size = static_cast<std::uint64_t>(*size);
  }
  if (e.type == EntryType::symlink) {
    const auto target = get_string(m, "target");
    if (!target || target->empty() || target->size() > kMaxPathBytes ||
        target->find('\0') != std::string::npos)
      return std::string("symlink entry needs a target without NUL, under PATH_MAX");
    e.target = *target;
  }
  if (m.contains("mod_time") && !m.at("mod_time").is_null()) {
    const auto t = get_int(m, "mod_time");
    if (!t) return std::string("mod_time must be an integer");
    e.mod_time = *t;
  }
  return e;
}

Json counts_json(const TreeCounts& c) {
  return Json{{"files", c.files}, {"dirs", c.dirs}, {"symlinks", c.symlinks}, {"bytes", c.bytes},
              {"skipped", c.skipped}};
}

TreeCounts parse_counts(const Json& m) {
  auto count = [&](std::string_view key) -> std::uint64_t {
    const auto v = get_int(m, key);
    return v && *v > 0 ? static_cast<std::uint64_t>(*v) : 0;
  };
  return TreeCounts{count("files"), count("dirs"), count("symlinks"), count("bytes"), count("skipped")};
}

}  // namespace airlock::protocol
