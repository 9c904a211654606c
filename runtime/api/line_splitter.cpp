// Line framing; see line_splitter.hpp.
#include "runtime/api/line_splitter.hpp"

namespace airlock::api {

std::vector<std::optional<std::string>> LineSplitter::feed(std::string_view bytes) {
  std::vector<std::optional<std::string>> out;
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, newline);
    if (!skipping_) {
      if (partial_.size() + piece.size() > max_line_) {
        skipping_ = true;
        partial_.clear();
        partial_.shrink_to_fit();
        out.emplace_back(std::nullopt);
      } else {
        partial_.append(piece);
      }
    }
    if (newline == std::string_view::npos) break;
    if (!skipping_) {
      std::string line = std::move(partial_);
      partial_.clear();
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") != std::string::npos) out.emplace_back(std::move(line));
    }
    skipping_ = false;
    bytes.remove_prefix(newline + 1);
  }
  return out;
}

}  // namespace airlock::api
