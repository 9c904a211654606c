// The synthetic address pool; see name_pool.hpp for the reuse rules.
#include "proxy/dns/name_pool.hpp"

#include <algorithm>
#include <stdexcept>

namespace airlock::dns {

policy::Cidr SyntheticPool::Config::default_network() {
  return policy::Cidr(policy::IpAddress::v4(0xC6120000u), 15);  // 198.18.0.0/15
}

SyntheticPool::SyntheticPool(Config config) : config_(std::move(config)) {
  const policy::Cidr& net = config_.network;
  if (!net.base().is_v4() || net.prefix_length() < 8 || net.prefix_length() > 30)
    throw std::invalid_argument("synthetic DNS pool " + net.to_string() +
                                " must be an IPv4 block from /8 to /30");
  if (config_.max_entries == 0)
    throw std::invalid_argument("synthetic DNS pool needs max_entries above 0");
  std::size_t block = std::size_t{1} << (32 - net.prefix_length());
  first_ = net.base().v4_value() + 1;  // skip the network address; the last one is never reached
  capacity_ = std::min(block - 2, config_.max_entries);
}

std::optional<std::uint32_t> SyntheticPool::slot_of(const policy::IpAddress& address) const {
  if (!address.is_v4() || !config_.network.contains(address)) return std::nullopt;
  std::uint32_t value = address.v4_value();
  if (value < first_ || value - first_ >= capacity_) return std::nullopt;
  return value - first_;
}

policy::IpAddress SyntheticPool::address_of(std::uint32_t slot) const {
  return policy::IpAddress::v4(first_ + slot);
}

void SyntheticPool::touch(Entry& entry, std::uint32_t slot, Clock::time_point now) {
  entry.last_used = std::max(entry.last_used, now);
  if (entry.pins == 0) {
    lru_.erase(entry.lru);
    lru_.push_front(slot);
    entry.lru = lru_.begin();
  }
}

std::optional<policy::IpAddress> SyntheticPool::assign(const std::string& name,
                                                       Clock::time_point now) {
  if (auto found = by_name_.find(name); found != by_name_.end()) {
    touch(by_slot_.at(found->second), found->second, now);
    return address_of(found->second);
  }

  std::uint32_t slot = 0;
  if (next_fresh_ < capacity_) {
    slot = next_fresh_++;
  } else {
    // Full. The LRU tail is the unpinned entry used longest ago: if it is not idle enough,
    // no unpinned entry is.
    if (lru_.empty()) {
      ++counters_.exhausted;
      return std::nullopt;
    }
    slot = lru_.back();
    Entry& victim = by_slot_.at(slot);
    if (now - victim.last_used < config_.min_idle) {
      ++counters_.exhausted;
      return std::nullopt;
    }
    lru_.pop_back();
    by_name_.erase(victim.name);
    by_slot_.erase(slot);
    ++counters_.evicted;
    ++counters_.reused;
  }

  lru_.push_front(slot);
  by_slot_.emplace(slot, Entry{name, now, 0, lru_.begin()});
  by_name_.emplace(name, slot);
  ++counters_.assigned;
  return address_of(slot);
}

std::optional<policy::IpAddress> SyntheticPool::address_for(const std::string& name) const {
  auto found = by_name_.find(name);
  if (found == by_name_.end()) return std::nullopt;
  return address_of(found->second);
}

std::optional<std::string> SyntheticPool::name_for(const policy::IpAddress& address) const {
  auto slot = slot_of(address);
  if (!slot) return std::nullopt;
  auto found = by_slot_.find(*slot);
  if (found == by_slot_.end()) return std::nullopt;
  return found->second.name;
}

bool SyntheticPool::pin(const policy::IpAddress& address) {
  auto slot = slot_of(address);
  if (!slot) return false;
  auto found = by_slot_.find(*slot);
  if (found == by_slot_.end()) return false;
  Entry& entry = found->second;
  if (entry.pins == 0) lru_.erase(entry.lru);
  ++entry.pins;
  return true;
}

void SyntheticPool::unpin(const policy::IpAddress& address, Clock::time_point now) {
  auto slot = slot_of(address);
  if (!slot) return;
  auto found = by_slot_.find(*slot);
  if (found == by_slot_.end() || found->second.pins == 0) return;
  Entry& entry = found->second;
  entry.last_used = std::max(entry.last_used, now);
  if (--entry.pins == 0) {
    lru_.push_front(*slot);
    entry.lru = lru_.begin();
  }
}

}  // namespace airlock::dns
