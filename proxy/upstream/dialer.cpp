// Resolve, check, connect; see dialer.hpp for the theory of operation.
#include "proxy/relay/dialer.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>

namespace airlock::relay {

asio::ip::address to_asio(const policy::IpAddress& address) {
  if (address.is_v4()) return asio::ip::address_v4(address.v4_value());
  asio::ip::address_v6::bytes_type bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = address.bytes()[i];
  return asio::ip::address_v6(bytes);
}

Dial::Dial(asio::io_context& io, const policy::Evaluator& evaluator, policy::Host host,
           std::uint16_t port, std::chrono::milliseconds connect_timeout, Callback callback)
    : io_(io),
      evaluator_(evaluator),
      host_(std::move(host)),
      port_(port),
      timeout_(connect_timeout),
      callback_(std::move(callback)),
      socket_(io),
      deadline_(io) {}

std::shared_ptr<Dial> Dial::start(asio::io_context& io, Resolver& resolver,
                                  const policy::Evaluator& evaluator, policy::Host host,
                                  std::uint16_t port, std::chrono::milliseconds connect_timeout,
                                  Callback callback) {
  auto dial = std::make_shared<Dial>(io, evaluator, std::move(host), port, connect_timeout,
                                     std::move(callback));
  if (dial->host_.is_ip()) {
    // Always asynchronous, like a lookup: the callback never runs inside start().
    asio::post(io, [dial] {
      if (!dial->done_) dial->on_addresses({dial->host_.ip()});
    });
  } else {
    resolver.resolve(dial->host_.name(), [dial](ResolveResult result) {
      if (dial->done_) return;
      if (!result.ok()) {
        dial->finish(DialResult{dial_reason::dns_failed, "", std::nullopt, result.error, {}});
        return;
      }
      dial->on_addresses(result.addresses);
    });
  }
  return dial;
}

void Dial::cancel() {
  if (done_) return;
  done_ = true;
  callback_ = nullptr;
  deadline_.cancel();
  boost::system::error_code ec;
  socket_.close(ec);
}

void Dial::on_addresses(const std::vector<policy::IpAddress>& addresses) {
  std::optional<policy::Decision> refusal;
  for (const auto& address : addresses) {
    policy::Decision decision = evaluator_.check_address(host_, address);
    if (decision.allowed)
      candidates_.push_back(address);
    else if (!refusal)
      refusal = std::move(decision);
  }
  // IPv4 first: many hosts have an IPv6 address but no route that works, and a blackholed
  // attempt would eat the whole deadline. Otherwise the resolver's order is kept.
  std::stable_partition(candidates_.begin(), candidates_.end(),
                        [](const policy::IpAddress& a) { return a.is_v4(); });
  if (candidates_.empty()) {
    DialResult result{dial_reason::private_address, "", std::nullopt, "", {}};
    if (refusal) {
      result.rule = refusal->rule;
      result.address = refusal->address;
    }
    finish(std::move(result));
    return;
  }
  deadline_.expires_after(timeout_);
  deadline_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->done_) return;
    self->timed_out_ = true;
    boost::system::error_code ignored;
    self->socket_.close(ignored);  // the pending connect completes with operation_aborted
  });
  connect_next();
}

void Dial::connect_next() {
  const policy::IpAddress& address = candidates_[next_];
  boost::system::error_code ec;
  socket_.close(ec);
  socket_ = asio::ip::tcp::socket(io_);
  socket_.async_connect(
      asio::ip::tcp::endpoint(to_asio(address), port_),
      [self = shared_from_this()](const boost::system::error_code& error) {
        if (self->done_) return;
        const policy::IpAddress& tried = self->candidates_[self->next_];
        if (self->timed_out_) {
          self->finish(DialResult{dial_reason::connect_timeout, "", tried, "timed out", {}});
          return;
        }
        if (!error) {
          self->deadline_.cancel();
          DialResult result{dial_reason::connected, "", tried, "", {}};
          result.socket.emplace(std::move(self->socket_));
          self->finish(std::move(result));
          return;
        }
        self->last_error_ = error.message();
        if (++self->next_ < self->candidates_.size()) {
          self->connect_next();
          return;
        }
        self->finish(DialResult{dial_reason::connect_failed, "", self->candidates_.front(),
                                self->last_error_, {}});
      });
}

void Dial::finish(DialResult result) {
  if (done_) return;
  done_ = true;
  deadline_.cancel();
  auto callback = std::move(callback_);
  callback_ = nullptr;
  if (callback) callback(std::move(result));
}

}  // namespace airlock::relay
