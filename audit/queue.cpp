// Bounded audit hand-off; see queue.hpp.
#include "audit/queue.hpp"

#include <algorithm>

namespace airlock::audit {

EventQueue::EventQueue(std::size_t capacity, Overflow mode, std::function<void()> on_ready)
    : capacity_(std::max<std::size_t>(capacity, 1)), mode_(mode), on_ready_(std::move(on_ready)) {}

void EventQueue::push(Event event) {
  bool signal = false;
  {
    std::unique_lock lock(mutex_);
    if (!closed_ && items_.size() >= capacity_) {
      if (mode_ == Overflow::kDrop) {
        ++lost_[std::string(type_of(event))];
        ++stats_.dropped;
        return;
      }
      ++stats_.waits;
      room_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    }
    items_.push_back(std::move(event));
    ++stats_.pushed;
    stats_.high_water = std::max<std::uint64_t>(stats_.high_water, items_.size());
    if (!ready_signalled_) {
      ready_signalled_ = true;
      signal = true;
    }
  }
  if (signal && on_ready_) on_ready_();
}

std::vector<Event> EventQueue::drain() {
  std::vector<Event> out;
  {
    std::lock_guard lock(mutex_);
    out.swap(items_);
    for (auto& [kind, count] : lost_) out.push_back(EventsLost{count, kind, "audit_queue_full"});
    lost_.clear();
    ready_signalled_ = false;
  }
  room_.notify_all();
  return out;
}

void EventQueue::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  room_.notify_all();
}

EventQueue::Stats EventQueue::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace airlock::audit
