// Audit events: log, index, memory, subscribers; see event_service.hpp.
#include "runtime/vm/event_service.hpp"

#include <fstream>

namespace airlock::runtime {

bool EventService::open(const std::filesystem::path& file, const std::string& vm_id) {
  path_ = file;
  offsets_.clear();
  recent_.clear();
  std::uint64_t offset = 0;
  std::uint64_t last = 0;
  bool ends_with_newline = true;
  {
    std::ifstream in(file, std::ios::binary);
    std::string line;
    while (in && std::getline(in, line)) {
      ends_with_newline = !in.eof();
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.is_object()) {
        auto seq = j.find("seq");
        if (seq != j.end() && seq->is_number_unsigned()) {
          const std::uint64_t s = seq->get<std::uint64_t>();
          // Only a contiguous run is indexed (the writer never leaves gaps); anything
          // odd before it (a hand-edited log) is simply not served by seq.
          if (offsets_.empty() || s != last + 1) {
            offsets_.clear();
            first_seq_ = s;
          }
          offsets_.push_back(offset);
          last = s;
        }
      }
      offset += line.size() + (in.eof() ? 0 : 1);
    }
  }
  if (!log_.open(file, vm_id)) return false;
  // AuditLog starts a torn last line's successor on a fresh line.
  end_offset_ = offset + (offset > 0 && !ends_with_newline ? 1 : 0);
  if (offsets_.empty() || last != log_.last_seq()) {
    offsets_.clear();
    first_seq_ = log_.last_seq() + 1;
  }
  return true;
}

std::string EventService::append(const nlohmann::json& body, std::int64_t now_ms) {
  return record(log_.append(body, now_ms));
}

std::string EventService::append(const audit::Event& event, std::int64_t now_ms) {
  return record(log_.append(event, now_ms));
}

std::string EventService::record(std::string line) {
  if (line.empty()) return line;
  if (offsets_.empty()) first_seq_ = log_.last_seq();
  offsets_.push_back(end_offset_);
  end_offset_ += line.size() + 1;
  recent_.push_back(line);
  if (recent_.size() > kMemoryEvents) recent_.pop_front();
  // A subscriber may unsubscribe itself (or others) from its callback.
  std::vector<SubscriberId> ids;
  ids.reserve(subscribers_.size());
  for (const auto& [id, fn] : subscribers_) ids.push_back(id);
  for (SubscriberId id : ids) {
    if (auto it = subscribers_.find(id); it != subscribers_.end()) it->second(line);
  }
  return line;
}

EventService::Batch EventService::read_from(std::uint64_t from_seq, std::size_t max_bytes) const {
  Batch batch;
  const std::uint64_t last = log_.last_seq();
  std::uint64_t seq = std::max(from_seq, first_seq_);
  batch.next_seq = seq;
  if (seq > last) return batch;
  std::size_t bytes = 0;
  const std::uint64_t recent_first = last + 1 - recent_.size();
  if (seq >= recent_first) {
    for (std::uint64_t s = seq; s <= last; ++s) {
      const std::string& line = recent_[s - recent_first];
      if (!batch.lines.empty() && bytes + line.size() > max_bytes) break;
      bytes += line.size();
      batch.lines.push_back(line);
      batch.next_seq = s + 1;
    }
    return batch;
  }
  // Older than memory: one seek to the indexed offset, then sequential lines.
  std::ifstream in(path_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offsets_[seq - first_seq_]));
  std::string line;
  while (seq < recent_first && std::getline(in, line)) {
    if (!nlohmann::json::accept(line)) continue;  // a line torn by a crash has no seq
    if (!batch.lines.empty() && bytes + line.size() > max_bytes) break;
    bytes += line.size();
    batch.lines.push_back(std::move(line));
    batch.next_seq = ++seq;
  }
  return batch;
}

EventService::SubscriberId EventService::subscribe(std::function<void(const std::string&)> on_line) {
  const SubscriberId id = next_subscriber_++;
  subscribers_[id] = std::move(on_line);
  return id;
}

void EventService::unsubscribe(SubscriberId id) { subscribers_.erase(id); }

}  // namespace airlock::runtime
