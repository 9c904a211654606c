// UpstreamPool: idle upstream connections kept for the next flow to the same place.
//
// Theory of operation. When the MITM's HTTP layer is done with an HTTP/1.1 upstream
// connection that is clean to reuse (idle, between messages, not closing), it releases
// it; the driver puts it here with its TLS session, under a key naming what the
// connection may carry: the grant's host, port and rule, and whether it is TLS. A later
// Open for the same key that can use an HTTP/1.1 connection takes it instead of dialling,
// so a guest opening many short connections costs one upstream handshake, not one each,
// and a guest's idle keep-alive connection holds no upstream connection at all.
// Entries are watched while they wait: bytes from the origin, its EOF or an error evict
// the entry (closed); so does `idle` time unused. At most max_per_key per key and
// max_total in all (the oldest goes first). A pool belongs to one VM (or one standalone
// proxy): connections are never shared across policies.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/flow/stream.hpp"
#include "proxy/tls/endpoint.hpp"

namespace airlock::flow {

class UpstreamPool {
 public:
  struct Config {
    std::size_t max_per_key = 16;
    std::size_t max_total = 256;
    std::chrono::milliseconds idle{30'000};
  };
  struct Entry {
    std::shared_ptr<ByteStream> stream;
    std::shared_ptr<tls::TlsEndpoint> tls;  // null for plain HTTP
    std::string address;                    // the upstream address it is connected to
  };
  struct Counters {
    std::uint64_t released = 0;   // put in the pool
    std::uint64_t reused = 0;     // taken back out
    std::uint64_t evicted = 0;    // the origin closed or spoke, or idle too long
    std::uint64_t dropped = 0;    // over a cap
  };

  UpstreamPool(asio::io_context& io, Config config) : io_(io), config_(config) {}
  explicit UpstreamPool(asio::io_context& io) : UpstreamPool(io, Config{}) {}
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  void put(const std::string& key, Entry entry);
  std::optional<Entry> take(const std::string& key);
  std::size_t size() const { return total_; }
  const Counters& counters() const { return counters_; }
  // Closes every pooled connection (the network is stopping).
  void clear();

 private:
  struct Slot;
  void evict(const std::string& key, const std::shared_ptr<Slot>& slot);

  asio::io_context& io_;
  Config config_;
  std::map<std::string, std::deque<std::shared_ptr<Slot>>> idle_;
  std::deque<std::pair<std::string, std::weak_ptr<Slot>>> order_;  // oldest first
  std::size_t total_ = 0;
  Counters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace airlock::flow
