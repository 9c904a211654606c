// SyntheticPool: stable mapping, reverse lookup, capacity, eviction with pins, exhaustion.
#include <doctest/doctest.h>

#include <set>
#include <stdexcept>

#include "proxy/dns/name_pool.hpp"

using namespace airlock::dns;
using airlock::policy::Cidr;
using airlock::policy::IpAddress;
using namespace std::chrono_literals;

namespace {

SyntheticPool small_pool(const char* cidr = "10.9.8.0/29", std::chrono::seconds idle = 60s) {
  SyntheticPool::Config config;
  config.network = *Cidr::parse(cidr);
  config.min_idle = idle;
  return SyntheticPool(config);
}

const Clock::time_point t0{};

}  // namespace

TEST_CASE("the default pool is 198.18.0.0/15 and skips its first and last address") {
  SyntheticPool pool(SyntheticPool::Config{});
  CHECK(pool.capacity() == 32768);
  auto first = pool.assign("example.com", t0);
  REQUIRE(first);
  CHECK(first->to_string() == "198.18.0.1");
  CHECK(Cidr::parse("198.18.0.0/15")->contains(*first));

  SyntheticPool::Config all;
  all.max_entries = 1u << 20;
  CHECK(SyntheticPool(all).capacity() == 131070);
}

TEST_CASE("a name keeps its address and the address maps back to it") {
  SyntheticPool pool(SyntheticPool::Config{});
  auto a = pool.assign("a.example", t0);
  auto b = pool.assign("b.example", t0);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a != *b);
  CHECK(pool.assign("a.example", t0 + 1000s) == a);
  CHECK(pool.address_for("b.example") == b);
  CHECK(pool.name_for(*a) == "a.example");
  CHECK(pool.name_for(*b) == "b.example");
  CHECK_FALSE(pool.name_for(*IpAddress::parse("198.18.0.200")));
  CHECK_FALSE(pool.name_for(*IpAddress::parse("8.8.8.8")));
  CHECK_FALSE(pool.name_for(*IpAddress::parse("::1")));
  CHECK_FALSE(pool.address_for("c.example"));
  CHECK(pool.size() == 2);
  CHECK(pool.counters().assigned == 2);
}

TEST_CASE("a /29 holds six names: a seventh evicts the least recently used idle one") {
  SyntheticPool pool = small_pool();
  REQUIRE(pool.capacity() == 6);
  std::set<std::string> addresses;
  for (int i = 0; i < 6; ++i) {
    auto address = pool.assign("n" + std::to_string(i), t0 + std::chrono::seconds(i));
    REQUIRE(address);
    addresses.insert(address->to_string());
  }
  CHECK(addresses.size() == 6);
  CHECK(addresses.count("10.9.8.0") == 0);
  CHECK(addresses.count("10.9.8.7") == 0);

  pool.assign("n0", t0 + 10s);  // n0 used again: n1 is now the LRU

  SUBCASE("nothing idle long enough: exhausted") {
    CHECK_FALSE(pool.assign("new", t0 + 30s));
    CHECK(pool.counters().exhausted == 1);
    CHECK(pool.size() == 6);
  }
  SUBCASE("after min_idle the LRU entry gives up its address") {
    auto n1 = pool.address_for("n1");
    auto fresh = pool.assign("new", t0 + 62s);
    REQUIRE(fresh);
    CHECK(fresh == n1);
    CHECK(pool.name_for(*fresh) == "new");
    CHECK_FALSE(pool.address_for("n1"));
    CHECK(pool.address_for("n0"));
    CHECK(pool.counters().evicted == 1);
  }
}

TEST_CASE("pinned entries are never evicted: unpinning makes them evictable again") {
  SyntheticPool pool = small_pool("10.9.8.0/30", 0s);  // two usable addresses
  REQUIRE(pool.capacity() == 2);
  auto a = *pool.assign("a", t0);
  auto b = *pool.assign("b", t0 + 1s);
  CHECK(pool.pin(a));
  CHECK(pool.pin(a));  // two flows
  CHECK(pool.pin(b));
  CHECK_FALSE(pool.pin(*IpAddress::parse("10.9.8.3")));
  CHECK_FALSE(pool.pin(*IpAddress::parse("1.1.1.1")));

  CHECK_FALSE(pool.assign("c", t0 + 100s));  // both pinned
  CHECK(pool.counters().exhausted == 1);

  pool.unpin(a, t0 + 100s);  // one flow left on a
  pool.unpin(b, t0 + 100s);
  auto c = pool.assign("c", t0 + 101s);
  REQUIRE(c);
  CHECK(*c == b);
  CHECK(pool.name_for(a) == "a");

  pool.unpin(a, t0 + 102s);
  pool.unpin(a, t0 + 102s);  // extra unpin is harmless
  auto d = pool.assign("d", t0 + 103s);
  REQUIRE(d);
  CHECK(*d == b);  // c (used at 101 s) is older than a (its flow ended at 102 s)
  CHECK(pool.name_for(a) == "a");
  CHECK_FALSE(pool.address_for("c"));
}

TEST_CASE("asking again refreshes an entry's place in the LRU order") {
  SyntheticPool pool = small_pool("10.9.8.0/30", 10s);
  auto a = *pool.assign("a", t0);
  auto b = *pool.assign("b", t0 + 1s);
  pool.assign("a", t0 + 2s);
  auto c = pool.assign("c", t0 + 20s);
  REQUIRE(c);
  CHECK(*c == b);
  CHECK(pool.name_for(a) == "a");
}

TEST_CASE("max_entries caps a large block") {
  SyntheticPool::Config config;
  config.max_entries = 3;
  config.min_idle = 0s;
  SyntheticPool pool(config);
  CHECK(pool.capacity() == 3);
  pool.assign("a", t0);
  pool.assign("b", t0);
  pool.assign("c", t0);
  auto d = pool.assign("d", t0 + 1s);
  REQUIRE(d);
  CHECK(d->to_string() == "198.18.0.1");
  CHECK(pool.size() == 3);
}

TEST_CASE("bad pool configurations are refused at setup") {
  SyntheticPool::Config config;
  config.network = *Cidr::parse("fd00::/64");
  CHECK_THROWS_AS(SyntheticPool{config}, std::invalid_argument);
  config.network = *Cidr::parse("10.0.0.0/31");
  CHECK_THROWS_AS(SyntheticPool{config}, std::invalid_argument);
  config.network = *Cidr::parse("10.0.0.0/8");
  config.max_entries = 0;
  CHECK_THROWS_AS(SyntheticPool{config}, std::invalid_argument);
}
