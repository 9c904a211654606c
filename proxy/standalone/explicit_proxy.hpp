// ExplicitProxy: the MITM as a classic HTTP proxy on a TCP port, for processes outside a
// VM and for benchmarks (`airlock proxy`).
//
// Theory of operation. Each client connection starts with one request head, read with
// http::RequestParser (bounded, under head_timeout):
//   - CONNECT host:port -> admitted like a guest flow (PolicyEngine::admit: blocklist,
//     allowlist, the IP guard for a literal IP). Refused: 403 with the JSON reason.
//     Admitted: "200 Connection established", and the tunnel is handed to a FlowDriver
//     exactly like a guest's flow to that name (TLS terminated with the proxy's CA, each
//     request judged, secrets swapped, the upstream dialled when the first request is
//     ready: a failed dial becomes a 502 inside the tunnel).
//   - absolute-form (GET http://host/...) -> the same admission, then the request itself
//     (and the rest of the connection) goes through a plain-HTTP flow to that host. A
//     later request on the connection for another host is refused (host_mismatch): one
//     connection, one origin.
//   - anything else -> 400.
// Every client connection ends with one flow record (protocol "proxy" when refused here),
// and every request with its request event, like a VM's.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "audit/events.hpp"
#include "proxy/flow/pool.hpp"
#include "proxy/mitm/context.hpp"
#include "proxy/upstream/dialer.hpp"
#include "proxy/upstream/resolver.hpp"

namespace airlock::standalone {

namespace asio = boost::asio;

using EventSink = std::function<void(audit::Event)>;

class ExplicitProxy {
 public:
  struct Config {
    asio::ip::tcp::endpoint listen;
    std::chrono::milliseconds head_timeout{30'000};
    upstream::Resolver::Config resolver;
    upstream::Dialer::Config dialer;
  };
  struct Counters {
    std::uint64_t connections = 0;
    std::uint64_t refused = 0;
    std::uint64_t bad_requests = 0;
  };

  ExplicitProxy(asio::io_context& io, std::shared_ptr<mitm::MitmContext> context, Config config, EventSink sink);
  ~ExplicitProxy();

  // Binds and listens; throws boost::system::system_error.
  void start();
  asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  const Counters& counters() const { return counters_; }
  const upstream::Dialer::Counters& dialer_counters() const { return dialer_.counters(); }

 private:
  class Connection;
  void accept();

  asio::io_context& io_;
  std::shared_ptr<mitm::MitmContext> context_;
  Config config_;
  EventSink sink_;
  upstream::Resolver resolver_;
  upstream::Dialer dialer_;
  flow::UpstreamPool pool_;
  asio::ip::tcp::acceptor acceptor_;
  Counters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace airlock::standalone
