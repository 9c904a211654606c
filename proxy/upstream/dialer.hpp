// Dial: the upstream half of opening one allowed flow - resolve, check, connect.
//
// Theory of operation. The engine has already judged the flow's host and port with
// Evaluator::evaluate (blocklist, allowlist, and the IP guard for a literal IP); a Dial
// only runs for flows that passed. For a name it asks the Resolver once, checks every
// address with Evaluator::check_address, and keeps the allowed ones (IPv4 first, else in
// the resolver's order); a literal IP is checked the same way. Then it connects to the
// allowed addresses one after another (the next only when the previous failed) under a
// single deadline. The socket it hands back is connected to an address the IP guard
// passed: there is no second lookup between the check and the connect.
//
// Outcomes (reasons shared with the events): connected, private_address (every address
// refused by the IP guard; nothing dialled), dns_failed, connect_failed, connect_timeout.
// cancel() stops it silently (the guest gave up): the callback never runs after it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "policy/evaluator.hpp"
#include "proxy/relay/resolver.hpp"

namespace airlock::relay {

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

class Dial : public std::enable_shared_from_this<Dial> {
 public:
  using Callback = std::function<void(DialResult)>;

  static std::shared_ptr<Dial> start(asio::io_context& io, Resolver& resolver,
                                     const policy::Evaluator& evaluator, policy::Host host,
                                     std::uint16_t port, std::chrono::milliseconds connect_timeout,
                                     Callback callback);
  void cancel();

  Dial(asio::io_context& io, const policy::Evaluator& evaluator, policy::Host host,
       std::uint16_t port, std::chrono::milliseconds connect_timeout, Callback callback);

 private:
  void on_addresses(const std::vector<policy::IpAddress>& addresses);
  void connect_next();
  void finish(DialResult result);

  asio::io_context& io_;
  const policy::Evaluator& evaluator_;
  policy::Host host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  Callback callback_;
  std::vector<policy::IpAddress> candidates_;
  std::size_t next_ = 0;
  asio::ip::tcp::socket socket_;
  asio::steady_timer deadline_;
  std::string last_error_;
  bool timed_out_ = false;
  bool done_ = false;
};

}  // namespace airlock::relay
