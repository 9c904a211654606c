// Resolver: the host-side name lookups of the guest network, c-ares on Boost.Asio.
//
// Theory of operation. A flow to an allowed name is dialled only after the host resolves
// the name itself; the guest never sees the answer. resolve() asks for A and AAAA at once
// (ares_getaddrinfo, no RFC 6724 sorting, so no probe sockets are opened toward the
// answers) and hands back every address, in the order the servers gave them; the caller
// checks each with Evaluator::check_address and dials only an allowed one, so there is
// never a second lookup for DNS rebinding to slip into.
//
// c-ares owns its sockets; it tells us through its socket-state callback which to watch
// for reading or writing, and we wait on them with posix::stream_descriptor::async_wait
// (never reading them ourselves, never closing them) and call ares_process_fd when one is
// ready. A steady_timer set from ares_timeout() drives c-ares's retries. Every lookup
// also has a hard deadline (Config::timeout): when it passes the caller hears "timeout"
// and whatever c-ares says later is dropped.
//
// Upstream servers are NetworkPolicy::dns_servers when given, else the host's
// resolv.conf. NetworkPolicy::resolve overrides are answered from the policy without any
// query. Callbacks always run from the io_context (posted), never inside resolve().
// Single-threaded: use from the thread running the io_context.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "policy/ip_address.hpp"
#include "policy/policy.hpp"

struct ares_channeldata;
struct ares_addrinfo;

namespace airlock::upstream {

namespace asio = boost::asio;

struct ResolveResult {
  std::vector<policy::IpAddress> addresses;  // deduplicated, in the servers' order
  std::string error;                         // "" on success: c-ares error text or "timeout"
  bool from_override = false;                // answered by NetworkPolicy::resolve
  bool ok() const { return error.empty() && !addresses.empty(); }
};

class Resolver {
 public:
  struct Config {
    std::chrono::milliseconds timeout{4'000};      // whole lookup: all servers, all tries
    std::chrono::milliseconds try_timeout{1'500};  // c-ares's first per-try timeout
    int tries = 2;
    std::size_t max_addresses = 16;                // more answers are ignored
    bool ipv6 = true;                              // ask for AAAA as well as A
  };

  struct Counters {
    std::uint64_t lookups = 0;     // queries sent to c-ares
    std::uint64_t overrides = 0;   // answered from the policy's resolve map
    std::uint64_t answered = 0;
    std::uint64_t failed = 0;      // c-ares errors, including "no address"
    std::uint64_t timeouts = 0;
  };

  using Callback = std::function<void(ResolveResult)>;

  // Throws std::runtime_error when c-ares can't be set up or a dns_servers entry is
  // refused (a setup error for the user).
  Resolver(asio::io_context& io, const policy::NetworkPolicy& network, Config config);
  Resolver(asio::io_context& io, const policy::NetworkPolicy& network)
      : Resolver(io, network, Config{}) {}
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Looks up a canonical host name. The callback runs exactly once, later, from the
  // io_context - unless the Resolver is destroyed first.
  void resolve(const std::string& name, Callback callback);

  const Counters& counters() const { return counters_; }

 private:
  struct Watch;
  struct Lookup;

  static void on_socket_state(void* data, int fd, int readable, int writable);
  static void on_addrinfo(void* arg, int status, int timeouts, ::ares_addrinfo* result);
  void watch(int fd, bool readable, bool writable);
  void arm(const std::shared_ptr<Watch>& w);
  void update_timer();
  void finish(const std::shared_ptr<Lookup>& lookup, ResolveResult result);

  asio::io_context& io_;
  Config config_;
  std::unordered_map<std::string, std::vector<policy::IpAddress>> overrides_;
  ares_channeldata* channel_ = nullptr;
  std::unordered_map<int, std::shared_ptr<Watch>> watches_;
  asio::steady_timer timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  Counters counters_;
};

}  // namespace airlock::upstream
