// Replacing echoed secret values in responses; see response_scrubber.hpp.
#include "proxy/mitm/response_scrubber.hpp"

#include <string_view>

namespace airlock::mitm {

ResponseScrubber::ResponseScrubber(const policy::SecretStore& store, const policy::Host& host,
                                   std::uint16_t port) {
  for (const auto& entry : store.entries())
    if (store.authorized(entry, host, port, true))
      entries_.push_back({entry.name, &entry.value.reveal(), &entry.placeholder});
}

void ResponseScrubber::feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) {
  if (echoed_) return;
  if (entries_.empty()) {
    out.insert(out.end(), in.begin(), in.end());
    return;
  }
  held_.append(reinterpret_cast<const char*>(in.data()), in.size());
  scan(false, out);
}

void ResponseScrubber::flush(std::vector<std::uint8_t>& out) {
  if (echoed_ || entries_.empty()) return;
  scan(true, out);
}

void ResponseScrubber::scan(bool at_end, std::vector<std::uint8_t>& out) {
  const std::string_view buf = held_;
  std::size_t emitted = 0;  // buf[emitted, p) is plain text to copy
  std::size_t p = 0;
  auto copy_plain = [&](std::size_t until) {
    out.insert(out.end(), buf.begin() + static_cast<std::ptrdiff_t>(emitted),
               buf.begin() + static_cast<std::ptrdiff_t>(until));
    emitted = until;
  };
  while (p < buf.size()) {
    bool matched = false;
    bool partial = false;
    for (const Entry& e : entries_) {
      const std::string& value = *e.value;
      if (buf[p] != value.front()) continue;
      const std::string_view rest = buf.substr(p);
      if (rest.size() >= value.size()) {
        if (rest.compare(0, value.size(), value) != 0) continue;
        copy_plain(p);
        if (e.placeholder->size() != value.size()) {
          echoed_ = e.name;
          held_.clear();
          return;
        }
        out.insert(out.end(), e.placeholder->begin(), e.placeholder->end());
        scrubbed_.insert(e.name);
        p += value.size();
        emitted = p;
        matched = true;
        break;
      }
      if (!at_end && value.compare(0, rest.size(), rest) == 0) partial = true;
    }
    if (matched) continue;
    if (partial) break;  // the tail may be the start of a value: keep it for the next read
    ++p;
  }
  copy_plain(p);
  held_.erase(0, emitted);
}

}  // namespace airlock::mitm
