// Resolve, check, connect; see dialer.hpp for the theory of operation.
#include "proxy/upstream/dialer.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>

namespace airlock::upstream {

asio::ip::address to_asio(const policy::IpAddress& address) {
  if (address.is_v4()) return asio::ip::address_v4(address.v4_value());
  asio::ip::address_v6::bytes_type bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = address.bytes()[i];
  return asio::ip::address_v6(bytes);
}

Dialer::Dialer(asio::io_context& io, Resolver& resolver, const policy::PolicyEngine& policy, Config config)
    : io_(io), resolver_(resolver), policy_(policy), config_(config) {}

std::shared_ptr<Dial> Dialer::dial(policy::Host host, std::uint16_t port, Dial::Callback callback) {
  ++counters_.dials;
  auto dial = std::make_shared<Dial>(*this, std::move(host), port, std::move(callback));
  if (running_ < config_.max_concurrent) {
    ++running_;
    dial->started_ = true;
    // Always asynchronous: the callback never runs inside dial().
    asio::post(io_, [dial] {
      if (!dial->done_) dial->begin();
    });
  } else {
    ++counters_.queued;
    waiting_.push_back(dial);
  }
  return dial;
}

void Dialer::release(Dial& dial) {
  if (!dial.started_) return;
  dial.started_ = false;
  --running_;
  start_waiting();
}

void Dialer::start_waiting() {
  while (running_ < config_.max_concurrent && !waiting_.empty()) {
    auto dial = waiting_.front().lock();
    waiting_.pop_front();
    if (!dial || dial->done_) continue;
    ++running_;
    dial->started_ = true;
    asio::post(io_, [dial] {
      if (!dial->done_) dial->begin();
    });
  }
}

Dial::Dial(Dialer& dialer, policy::Host host, std::uint16_t port, Callback callback)
    : dialer_(dialer), host_(std::move(host)), port_(port), callback_(std::move(callback)),
      socket_(dialer.io_), deadline_(dialer.io_) {}

void Dial::begin() {
  // The deadline covers resolution and connects, from now.
  deadline_.expires_after(dialer_.config_.connect_timeout);
  deadline_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->done_) return;
    self->timed_out_ = true;
    boost::system::error_code ignored;
    self->socket_.close(ignored);  // a pending connect completes with operation_aborted
    self->finish(DialResult{dial_reason::connect_timeout, "", std::nullopt, "timed out", {}});
  });
  if (host_.is_ip()) {
    on_addresses({host_.ip()});
    return;
  }
  dialer_.resolver_.resolve(host_.name(), [self = shared_from_this()](ResolveResult result) {
    if (self->done_) return;
    if (!result.ok()) {
      self->finish(DialResult{dial_reason::dns_failed, "", std::nullopt, result.error, {}});
      return;
    }
    self->on_addresses(result.addresses);
  });
}

void Dial::cancel() {
  if (done_) return;
  done_ = true;
  callback_ = nullptr;
  deadline_.cancel();
  boost::system::error_code ec;
  socket_.close(ec);
  ++dialer_.counters_.cancelled;
  dialer_.release(*this);
}

void Dial::on_addresses(const std::vector<policy::IpAddress>& addresses) {
  std::optional<policy::Decision> refusal;
  for (const auto& address : addresses) {
    policy::Decision decision = dialer_.policy_.check_address(host_, address);
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
      result.rule = refusal->rule.to_string();
      result.address = refusal->address;
    }
    finish(std::move(result));
    return;
  }
  connect_next();
}

void Dial::connect_next() {
  const policy::IpAddress& address = candidates_[next_];
  boost::system::error_code ec;
  socket_.close(ec);
  socket_ = asio::ip::tcp::socket(dialer_.io_);
  socket_.async_connect(
      asio::ip::tcp::endpoint(to_asio(address), port_),
      [self = shared_from_this()](const boost::system::error_code& error) {
        if (self->done_) return;
        const policy::IpAddress& tried = self->candidates_[self->next_];
        if (!error) {
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
        self->finish(DialResult{dial_reason::connect_failed, "", self->candidates_.front(), self->last_error_, {}});
      });
}

void Dial::finish(DialResult result) {
  if (done_) return;
  done_ = true;
  deadline_.cancel();
  if (result.connected()) ++dialer_.counters_.connected;
  else if (result.reason == dial_reason::private_address) ++dialer_.counters_.refused;
  else ++dialer_.counters_.failed;
  dialer_.release(*this);
  auto callback = std::move(callback_);
  callback_ = nullptr;
  if (callback) callback(std::move(result));
}

}  // namespace airlock::upstream
