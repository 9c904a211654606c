// c-ares driven by Asio; see resolver.hpp for the theory of operation.
#include "proxy/upstream/resolver.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <boost/asio/post.hpp>

namespace airlock::upstream {

struct Resolver::Watch {
  Watch(asio::io_context& io, int fd_) : fd(fd_), descriptor(io) {}
  int fd;
  asio::posix::stream_descriptor descriptor;  // released, never closed: c-ares owns the fd
  bool want_read = false;
  bool want_write = false;
  bool reading = false;
  bool writing = false;
  bool closed = false;
};

struct Resolver::Lookup {
  Lookup(asio::io_context& io, Callback cb) : callback(std::move(cb)), deadline(io) {}
  Callback callback;
  bool done = false;
  asio::steady_timer deadline;
};

namespace {

// What c-ares's callback gets as its argument; freed by that callback.
struct AresCallbackArg {
  Resolver* resolver;
  std::shared_ptr<void> lookup;
};

void init_library_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
      throw std::runtime_error("c-ares: library initialisation failed");
  });
}

std::string servers_csv(const std::vector<policy::DnsServer>& servers) {
  std::string csv;
  for (const auto& server : servers) {
    if (!csv.empty()) csv += ',';
    const std::string ip = server.address.to_string();
    csv += (server.address.is_v4() ? ip : "[" + ip + "]") + ":" + std::to_string(server.port);
  }
  return csv;
}

std::vector<policy::IpAddress> addresses_of(const ares_addrinfo* info, std::size_t max) {
  std::vector<policy::IpAddress> out;
  if (info == nullptr) return out;
  for (const ares_addrinfo_node* node = info->nodes; node != nullptr && out.size() < max;
       node = node->ai_next) {
    std::optional<policy::IpAddress> address;
    if (node->ai_family == AF_INET && node->ai_addr != nullptr &&
        node->ai_addrlen >= sizeof(sockaddr_in)) {
      sockaddr_in sin{};
      std::memcpy(&sin, node->ai_addr, sizeof sin);
      address = policy::IpAddress::v4(ntohl(sin.sin_addr.s_addr));
    } else if (node->ai_family == AF_INET6 && node->ai_addr != nullptr &&
               node->ai_addrlen >= sizeof(sockaddr_in6)) {
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, node->ai_addr, sizeof sin6);
      std::array<std::uint8_t, 16> bytes{};
      std::memcpy(bytes.data(), &sin6.sin6_addr, bytes.size());
      address = policy::IpAddress::v6(bytes);
    }
    if (address && std::find(out.begin(), out.end(), *address) == out.end())
      out.push_back(*address);
  }
  return out;
}

}  // namespace

Resolver::Resolver(asio::io_context& io, const policy::NetworkPolicy& network, Config config)
    : io_(io), config_(config), timer_(io) {
  init_library_once();
  for (const auto& entry : network.resolve) overrides_[entry.host] = entry.addresses;

  ares_options options{};
  options.sock_state_cb = &Resolver::on_socket_state;
  options.sock_state_cb_data = this;
  options.timeout = static_cast<int>(config_.try_timeout.count());
  options.tries = std::max(1, config_.tries);
  const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  ares_channel channel = nullptr;
  if (int rc = ares_init_options(&channel, &options, mask); rc != ARES_SUCCESS)
    throw std::runtime_error(std::string("c-ares: ") + ares_strerror(rc));
  channel_ = channel;
  if (!network.dns_servers.empty()) {
    const std::string csv = servers_csv(network.dns_servers);
    if (int rc = ares_set_servers_ports_csv(channel_, csv.c_str()); rc != ARES_SUCCESS) {
      ares_destroy(channel_);
      channel_ = nullptr;
      throw std::runtime_error("dns_servers " + csv + ": " + ares_strerror(rc));
    }
  }
}

Resolver::~Resolver() {
  alive_.reset();
  timer_.cancel();
  // Pending lookups end with ARES_EDESTRUCTION (their callers are not told: they are
  // being torn down too); c-ares reports each socket closed through on_socket_state.
  if (channel_ != nullptr) ares_destroy(channel_);
  for (auto& [fd, w] : watches_) {
    w->closed = true;
    w->descriptor.release();
  }
}

void Resolver::resolve(const std::string& name, Callback callback) {
  auto lookup = std::make_shared<Lookup>(io_, std::move(callback));
  if (auto it = overrides_.find(name); it != overrides_.end()) {
    ++counters_.overrides;
    ResolveResult result;
    result.addresses = it->second;
    result.from_override = true;
    if (result.addresses.empty()) result.error = "override lists no address";
    finish(lookup, std::move(result));
    return;
  }
  ++counters_.lookups;
  std::weak_ptr<bool> alive = alive_;
  lookup->deadline.expires_after(config_.timeout);
  lookup->deadline.async_wait([this, alive, lookup](const boost::system::error_code& ec) {
    if (ec || alive.expired() || lookup->done) return;
    ++counters_.timeouts;
    finish(lookup, ResolveResult{{}, "timeout", false});
  });

  ares_addrinfo_hints hints{};
  hints.ai_family = config_.ipv6 ? AF_UNSPEC : AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = ARES_AI_NOSORT;
  auto* arg = new AresCallbackArg{this, lookup};
  ares_getaddrinfo(channel_, name.c_str(), nullptr, &hints, &Resolver::on_addrinfo, arg);
  update_timer();
}

void Resolver::on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  std::unique_ptr<AresCallbackArg> owned(static_cast<AresCallbackArg*>(arg));
  std::unique_ptr<ares_addrinfo, decltype(&ares_freeaddrinfo)> info(result, &ares_freeaddrinfo);
  if (status == ARES_EDESTRUCTION) return;  // the Resolver is going away
  Resolver& self = *owned->resolver;
  auto lookup = std::static_pointer_cast<Lookup>(owned->lookup);
  if (lookup->done) return;  // the deadline already answered
  ResolveResult out;
  if (status == ARES_SUCCESS) out.addresses = addresses_of(info.get(), self.config_.max_addresses);
  if (status != ARES_SUCCESS)
    out.error = ares_strerror(status);
  else if (out.addresses.empty())
    out.error = "no address";
  if (out.ok())
    ++self.counters_.answered;
  else
    ++self.counters_.failed;
  self.finish(lookup, std::move(out));
}

void Resolver::finish(const std::shared_ptr<Lookup>& lookup, ResolveResult result) {
  lookup->done = true;
  lookup->deadline.cancel();
  std::weak_ptr<bool> alive = alive_;
  asio::post(io_, [alive, lookup, result = std::move(result)]() mutable {
    if (alive.expired() || !lookup->callback) return;
    auto callback = std::move(lookup->callback);
    callback(std::move(result));
  });
}

void Resolver::on_socket_state(void* data, int fd, int readable, int writable) {
  static_cast<Resolver*>(data)->watch(fd, readable != 0, writable != 0);
}

void Resolver::watch(int fd, bool readable, bool writable) {
  auto it = watches_.find(fd);
  if (!readable && !writable) {
    // c-ares is about to close the socket: stop watching it before the fd is reused.
    if (it != watches_.end()) {
      it->second->closed = true;
      it->second->descriptor.release();
      watches_.erase(it);
    }
    return;
  }
  if (it == watches_.end()) {
    auto w = std::make_shared<Watch>(io_, fd);
    boost::system::error_code ec;
    w->descriptor.assign(fd, ec);
    if (ec) return;  // can't watch it: the lookup runs into its deadline
    it = watches_.emplace(fd, std::move(w)).first;
  }
  it->second->want_read = readable;
  it->second->want_write = writable;
  arm(it->second);
}

void Resolver::arm(const std::shared_ptr<Watch>& w) {
  std::weak_ptr<bool> alive = alive_;
  if (w->want_read && !w->reading && !w->closed) {
    w->reading = true;
    w->descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                             [this, alive, w](const boost::system::error_code& ec) {
                               w->reading = false;
                               if (ec || alive.expired() || w->closed) return;
                               ares_process_fd(channel_, w->fd, ARES_SOCKET_BAD);
                               arm(w);
                               update_timer();
                             });
  }
  if (w->want_write && !w->writing && !w->closed) {
    w->writing = true;
    w->descriptor.async_wait(asio::posix::stream_descriptor::wait_write,
                             [this, alive, w](const boost::system::error_code& ec) {
                               w->writing = false;
                               if (ec || alive.expired() || w->closed) return;
                               ares_process_fd(channel_, ARES_SOCKET_BAD, w->fd);
                               arm(w);
                               update_timer();
                             });
  }
}

void Resolver::update_timer() {
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
    timer_.cancel();
    return;
  }
  timer_.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
  std::weak_ptr<bool> alive = alive_;
  timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    update_timer();
  });
}

}  // namespace airlock::upstream
