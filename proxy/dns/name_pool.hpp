// SyntheticPool: the synthetic IPv4 addresses the gateway hands out for allowed names.
//
// Theory of operation. The guest never learns a real upstream address: an allowed name
// is answered with an address from a private block (198.18.0.0/15, the benchmarking
// range, by default), and a flow to that address is later mapped back to the name with
// name_for(). So the mapping must be stable (same name, same address, while the entry
// lives) and an address must not be handed to a second name while the guest may still
// use it for the first.
//
// Addresses are handed out in order, skipping the block's first and last address. Once
// the pool is full (every usable address, or max_entries), a new name takes over the
// least-recently-used entry, but only one that no live flow has pinned (pin/unpin, called
// by the flow layer) and that nobody asked about for min_idle (longer than any answer's
// TTL, so a well-behaved guest has forgotten it). If no entry qualifies, assign() says
// nothing and the handler answers SERVFAIL: exhaustion degrades to "try again later",
// never to a wrong mapping. Time comes in as `now`.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "policy/ip_address.hpp"

namespace airlock::dns {

using Clock = std::chrono::steady_clock;

class SyntheticPool {
 public:
  struct Config {
    policy::Cidr network = default_network();  // IPv4, prefix /8 to /30
    std::size_t max_entries = 32768;            // memory cap; also capped by the block
    std::chrono::seconds min_idle{300};         // unasked-for time before an entry is reused

    static policy::Cidr default_network();      // 198.18.0.0/15
  };

  struct Counters {
    std::uint64_t assigned = 0;   // new names given an address
    std::uint64_t reused = 0;     // of which took over an evicted entry's address
    std::uint64_t evicted = 0;
    std::uint64_t exhausted = 0;  // assign() found no address
  };

  // Throws std::invalid_argument for a network that is not IPv4 /8../30 or max_entries 0.
  explicit SyntheticPool(Config config);

  // The address for a canonical name, giving it one if it has none; marks it used at now.
  // nullopt when the pool is full and nothing may be evicted.
  std::optional<policy::IpAddress> assign(const std::string& name, Clock::time_point now);

  // Lookups that change nothing.
  std::optional<policy::IpAddress> address_for(const std::string& name) const;
  std::optional<std::string> name_for(const policy::IpAddress& address) const;
  bool contains(const policy::IpAddress& address) const { return config_.network.contains(address); }

  // Live-flow references: a pinned entry is never evicted. pin() returns false for an
  // address that maps to no name. unpin() marks the entry used at now (a flow just ended).
  bool pin(const policy::IpAddress& address);
  void unpin(const policy::IpAddress& address, Clock::time_point now);

  std::size_t size() const { return by_slot_.size(); }
  std::size_t capacity() const { return capacity_; }
  const Counters& counters() const { return counters_; }

 private:
  struct Entry {
    std::string name;
    Clock::time_point last_used;
    std::uint32_t pins = 0;
    std::list<std::uint32_t>::iterator lru;  // valid while pins == 0
  };

  std::optional<std::uint32_t> slot_of(const policy::IpAddress& address) const;
  policy::IpAddress address_of(std::uint32_t slot) const;
  void touch(Entry& entry, std::uint32_t slot, Clock::time_point now);

  Config config_;
  std::uint32_t first_ = 0;        // host-order address of slot 0
  std::size_t capacity_ = 0;
  std::uint32_t next_fresh_ = 0;   // slots below it have been handed out at least once
  std::unordered_map<std::string, std::uint32_t> by_name_;
  std::unordered_map<std::uint32_t, Entry> by_slot_;
  std::list<std::uint32_t> lru_;   // unpinned slots, most recently used first
  Counters counters_;
};

}  // namespace airlock::dns
