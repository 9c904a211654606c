// Newline-delimited messages, sans-IO: bytes in, whole lines out, however the bytes
// were split. A line longer than its cap is skipped up to its newline and reported once
// (as nothing), so one oversized message costs an error reply, not the connection.
// A trailing "\r" is dropped; blank lines are ignored.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::api {

class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line) : max_line_(max_line) {}
  // Lines completed by bytes, in order. An oversized line appears as std::nullopt.
  std::vector<std::optional<std::string>> feed(std::string_view bytes);

 private:
  std::size_t max_line_;
  std::string partial_;
  bool skipping_ = false;
};

}  // namespace airlock::api
