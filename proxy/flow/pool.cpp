// Idle upstream connections; see pool.hpp.
#include "proxy/flow/pool.hpp"

#include <algorithm>

namespace airlock::flow {

struct UpstreamPool::Slot {
  Entry entry;
  asio::steady_timer timer;
  explicit Slot(asio::io_context& io, Entry e) : entry(std::move(e)), timer(io) {}
};

UpstreamPool::~UpstreamPool() {
  alive_.reset();
  clear();
}

void UpstreamPool::clear() {
  for (auto& [key, slots] : idle_)
    for (auto& slot : slots) {
      slot->timer.cancel();
      slot->entry.stream->close();
    }
  idle_.clear();
  order_.clear();
  total_ = 0;
}

void UpstreamPool::put(const std::string& key, Entry entry) {
  if (!entry.stream || !entry.stream->open() || entry.stream->eof() || entry.stream->queued() > 0) {
    if (entry.stream) entry.stream->close();
    ++counters_.dropped;
    return;
  }
  auto& slots = idle_[key];
  if (slots.size() >= config_.max_per_key) {
    ++counters_.dropped;
    entry.stream->close();
    return;
  }
  while (total_ >= config_.max_total && !order_.empty()) {
    auto [old_key, weak] = order_.front();
    order_.pop_front();
    if (auto old = weak.lock()) evict(old_key, old);
  }
  auto slot = std::make_shared<Slot>(io_, std::move(entry));
  slots.push_back(slot);
  order_.emplace_back(key, slot);
  ++total_;
  ++counters_.released;
  std::weak_ptr<bool> alive = alive_;
  std::weak_ptr<Slot> weak = slot;
  auto gone = [this, alive, key, weak] {
    if (alive.expired()) return;
    if (auto s = weak.lock()) evict(key, s);
  };
  // While it waits, anything from the origin (bytes it shouldn't send, its EOF, an error)
  // ends the connection.
  slot->entry.stream->set_handlers(ByteStream::Handlers{
      [gone](std::span<const std::uint8_t>) { gone(); }, [gone] { gone(); },
      [gone](const boost::system::error_code&) { gone(); }, nullptr});
  slot->entry.stream->read(true);
  slot->timer.expires_after(config_.idle);
  slot->timer.async_wait([gone](const boost::system::error_code& ec) {
    if (!ec) gone();
  });
}

void UpstreamPool::evict(const std::string& key, const std::shared_ptr<Slot>& slot) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return;
  auto& slots = it->second;
  auto pos = std::find(slots.begin(), slots.end(), slot);
  if (pos == slots.end()) return;
  slots.erase(pos);
  if (slots.empty()) idle_.erase(it);
  --total_;
  ++counters_.evicted;
  slot->timer.cancel();
  slot->entry.stream->close();
}

std::optional<UpstreamPool::Entry> UpstreamPool::take(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end() || it->second.empty()) return std::nullopt;
  // The most recently used: its TCP and TLS state are the warmest.
  auto slot = it->second.back();
  it->second.pop_back();
  if (it->second.empty()) idle_.erase(it);
  --total_;
  ++counters_.reused;
  slot->timer.cancel();
  slot->entry.stream->read(false);
  slot->entry.stream->set_handlers({});
  return std::move(slot->entry);
}

}  // namespace airlock::flow
