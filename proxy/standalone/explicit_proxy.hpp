// ExplicitProxy: the MITM engine as a classic HTTP proxy on a TCP port, for processes
// outside a VM and for benchmarks (`airlock proxy`).
//
// Theory of operation. Each client connection starts with one request head, read with
// http::RequestParser (bounded):
//   - CONNECT host:port -> judged by the Evaluator (blocklist, allowlist, literal IPs
//     through the IP guard), then dialled like a guest flow (Dial: one resolution, every
//     address through the IP guard, connect). Refused: 403 with the JSON reason; dial
//     failure: 502. Connected: "200 Connection established", and the tunnel becomes a
//     MitmFlow exactly like a guest's flow to that name (TLS terminated with the proxy's
//     CA, each request judged, secrets swapped).
//   - absolute-form (GET http://host/...) -> the same, then the request itself (and the
//     rest of the connection) goes through a plain-HTTP MitmFlow. A later request on the
//     connection for another host is refused (host_mismatch): one connection, one origin.
//   - anything else -> 400.
// Events go to the sink like the engine's (type "network").
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "policy/evaluator.hpp"
#include "policy/policy.hpp"
#include "proxy/mitm/context.hpp"
#include "proxy/relay/engine.hpp"
#include "proxy/relay/resolver.hpp"

namespace airlock::relay {

class ExplicitProxy {
 public:
  struct Config {
    asio::ip::tcp::endpoint listen;
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds head_timeout{30'000};
    Resolver::Config resolver;
  };
  struct Counters {
    std::uint64_t connections = 0;
    std::uint64_t refused = 0;
    std::uint64_t failed = 0;
    std::uint64_t bad_requests = 0;
  };

  ExplicitProxy(asio::io_context& io, const policy::Policy& policy,
                std::shared_ptr<mitm::MitmContext> context, Config config, EventSink sink);
  ~ExplicitProxy();

  // Binds and listens; throws boost::system::system_error.
  void start();
  asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  const Counters& counters() const { return counters_; }

 private:
  class Connection;
  void accept();

  asio::io_context& io_;
  policy::NetworkPolicy network_;
  policy::Evaluator evaluator_;
  std::shared_ptr<mitm::MitmContext> context_;
  Config config_;
  EventSink sink_;
  Resolver resolver_;
  asio::ip::tcp::acceptor acceptor_;
  Counters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace airlock::relay
