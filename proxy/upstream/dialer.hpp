// Dialer: the upstream half of an allowed flow - resolve, check, connect - with a cap on
// how many run at once.
//
// Theory of operation. A flow was admitted by name (or literal IP) and port; a layer
// asks for its upstream when it has something to send. dial() resolves the name once
// (Resolver), checks every address with the policy's IP guard
// (PolicyEngine::check_address) and keeps the allowed ones (IPv4 first, else in the
// resolver's order); a literal IP is checked the same way. It then connects to them one
// after another (the next only when the previous failed) under one deadline. The socket
// it hands back is connected to an address the IP guard passed: there is no second
// lookup between the check and the connect, so DNS rebinding can't slip through.
//
// At most Config::max_concurrent dials run at once; the rest wait in order, and a dial's
// deadline starts when it starts, not while it waits: on a busy host (hundreds of guest
// connections opening at once) a slow queue is not a failed connect.
//
// Outcomes (reasons shared with the events): connected, private_address (every address
// refused by the IP guard; nothing dialled), dns_failed, connect_failed, connect_timeout.
// Dial::cancel() stops one silently (the guest gave up): its callback never runs after it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "policy/engine.hpp"
#include "proxy/upstream/resolver.hpp"

namespace airlock::upstream {

namespace dial_reason {
inline constexpr std::string_view connected = "connected";
inline constexpr std::string_view private_address = "private_address";
inline constexpr std::string_view dns_failed = "dns_failed";
inline constexpr std::string_view connect_failed = "connect_failed";
inline constexpr std::string_view connect_timeout = "connect_timeout";
}  // namespace dial_reason

struct DialResult {
  std::string_view reason;                   // one of dial_reason
  std::string rule;                          // the IP guard's rule when it decided
  std::optional<policy::IpAddress> address;  // connected to, or the first refused/failed
  std::string detail;                        // resolver or socket error text
  std::optional<asio::ip::tcp::socket> socket;  // set when connected
  bool connected() const { return socket.has_value(); }
};

asio::ip::address to_asio(const policy::IpAddress& address);

class Dialer;

class Dial : public std::enable_shared_from_this<Dial> {
 public:
  using Callback = std::function<void(DialResult)>;

  Dial(Dialer& dialer, policy::Host host, std::uint16_t port, Callback callback);
  void cancel();
  bool done() const { return done_; }

 private:
  friend class Dialer;
  void begin();
  void on_addresses(const std::vector<policy::IpAddress>& addresses);
  void connect_next();
  void finish(DialResult result);

  Dialer& dialer_;
  policy::Host host_;
  std::uint16_t port_;
  Callback callback_;
  std::vector<policy::IpAddress> candidates_;
  std::size_t next_ = 0;
  asio::ip::tcp::socket socket_;
  asio::steady_timer deadline_;
  std::string last_error_;
  bool started_ = false;
  bool timed_out_ = false;
  bool done_ = false;
};

class Dialer {
 public:
  struct Config {
    std::chrono::milliseconds connect_timeout{10'000};  // from the start of the dial
    std::size_t max_concurrent = 64;
  };
  struct Counters {
    std::uint64_t dials = 0;
    std::uint64_t connected = 0;
    std::uint64_t refused = 0;   // private_address
    std::uint64_t failed = 0;    // dns_failed, connect_failed, connect_timeout
    std::uint64_t cancelled = 0;
    std::uint64_t queued = 0;    // had to wait for a free slot
  };

  Dialer(asio::io_context& io, Resolver& resolver, const policy::PolicyEngine& policy, Config config);

  // Starts (or queues) a dial; the callback runs from the io_context, never inside dial().
  std::shared_ptr<Dial> dial(policy::Host host, std::uint16_t port, Dial::Callback callback);
  const Counters& counters() const { return counters_; }

 private:
  friend class Dial;
  void release(Dial& dial);
  void start_waiting();

  asio::io_context& io_;
  Resolver& resolver_;
  const policy::PolicyEngine& policy_;
  Config config_;
  std::size_t running_ = 0;
  std::deque<std::weak_ptr<Dial>> waiting_;
  Counters counters_;
};

}  // namespace airlock::upstream
