// The standalone explicit proxy; see explicit_proxy.hpp.
#include "proxy/relay/explicit_proxy.hpp"

#include <variant>

#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "policy/url.hpp"
#include "proxy/http/request_parser.hpp"
#include "proxy/http/serialize.hpp"
#include "proxy/mitm/http_pipeline.hpp"
#include "proxy/relay/dialer.hpp"
#include "proxy/relay/mitm_flow.hpp"
#include "proxy/relay/socket_flow.hpp"

namespace airlock::relay {

class ExplicitProxy::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ExplicitProxy& proxy, asio::ip::tcp::socket socket)
      : proxy_(proxy), alive_(proxy.alive_), socket_(std::move(socket)), timer_(proxy.io_),
        chunk_(16 * 1024) {}

  void start() {
    timer_.expires_after(proxy_.config_.head_timeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->handed_off_) return;
      boost::system::error_code ignored;
      self->socket_.close(ignored);
    });
    read();
  }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](
                                                      const boost::system::error_code& ec,
                                                      std::size_t n) {
      if (ec || self->alive_.expired()) return;
      self->buffer_.insert(self->buffer_.end(), self->chunk_.begin(),
                           self->chunk_.begin() + static_cast<std::ptrdiff_t>(n));
      self->parse();
    });
  }

  void parse() {
    std::vector<http::RequestEvent> events;
    const std::size_t consumed = parser_.feed(std::span(buffer_).subspan(parsed_), events);
    parsed_ += consumed;
    for (auto& event : events) {
      if (auto* head = std::get_if<http::RequestHeadEvent>(&event)) {
        on_head(std::move(head->head));
        return;
      }
      if (auto* error = std::get_if<http::ParseErrorEvent>(&event)) {
        bad(error->reason);
        return;
      }
    }
    read();
  }

  void on_head(http::RequestHead head) {
    std::string authority;
    bool tunnel = head.method == "CONNECT";
    std::optional<policy::Host> host;
    std::uint16_t port = 0;
    if (tunnel) {
      auto parsed = policy::parse_authority(head.target, 443);
      if (!parsed) return bad(parsed.error());
      host = parsed->first;
      port = parsed->second;
    } else {
      auto url = policy::parse_url(head.target);
      if (!url || url->scheme != "http")
        return bad("an explicit proxy takes CONNECT or an absolute http:// URL");
      host = url->host;
      port = url->port;
    }
    const std::string host_text = host->to_string();
    policy::Decision decision = proxy_.evaluator_.evaluate(*host, port);
    if (!decision.allowed) {
      ++proxy_.counters_.refused;
      emit_refusal(host_text, port, decision.reason, decision.rule, "");
      reply(403, "Forbidden", mitm::refusal_body(decision.reason, host_text));
      return;
    }
    const std::string rule = decision.rule;
    std::weak_ptr<bool> alive = alive_;
    dial_ = Dial::start(
        proxy_.io_, proxy_.resolver_, proxy_.evaluator_, *host, port, proxy_.config_.connect_timeout,
        [self = shared_from_this(), alive, host = *host, port, rule, tunnel](DialResult result) {
          if (alive.expired()) return;
          self->on_dialled(host, port, rule, tunnel, std::move(result));
        });
  }

  void on_dialled(const policy::Host& host, std::uint16_t port, const std::string& rule, bool tunnel,
                  DialResult result) {
    const std::string host_text = host.to_string();
    if (!result.connected()) {
      const bool refused = result.reason == dial_reason::private_address;
      ++(refused ? proxy_.counters_.refused : proxy_.counters_.failed);
      emit_refusal(host_text, port, result.reason, result.rule.empty() ? rule : result.rule,
                   result.detail);
      if (refused)
        reply(403, "Forbidden", mitm::refusal_body(result.reason, host_text));
      else
        reply(502, "Bad Gateway", mitm::refusal_body(result.reason, host_text));
      return;
    }
    handed_off_ = true;
    timer_.cancel();
    mitm::FlowTarget target;
    target.host = host;
    target.port = port;
    target.rule = rule;
    EventSink sink = proxy_.sink_;
    auto handler = std::make_shared<MitmFlow>(
        proxy_.io_, proxy_.context_, std::move(target), rule_names_port(rule),
        std::move(*result.socket), [sink](nlohmann::json data) {
          if (sink) sink(AuditEvent{"network", std::move(data)});
        });
    handler->report_close(true);
    std::vector<std::uint8_t> rest;
    if (tunnel) {
      rest.assign(buffer_.begin() + static_cast<std::ptrdiff_t>(parsed_), buffer_.end());
      const std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
      boost::system::error_code ec;
      asio::write(socket_, asio::buffer(ok), ec);  // tiny; the socket is writable
      if (ec) return;
    } else {
      rest = std::move(buffer_);  // the request itself goes through the flow
    }
    auto flow = std::make_shared<SocketGuestFlow>(std::move(socket_), std::move(rest));
    flow->start(std::move(handler));
  }

  void bad(const std::string& why) {
    ++proxy_.counters_.bad_requests;
    emit_refusal("", 0, mitm::reason::bad_request, "", why);
    reply(400, "Bad Request", mitm::refusal_body(mitm::reason::bad_request, ""));
  }

  void emit_refusal(const std::string& host, std::uint16_t port, std::string_view why,
                    const std::string& rule, const std::string& detail) {
    nlohmann::json data = {{"kind", "flow"},       {"protocol", "proxy"}, {"host", host},
                           {"port", port},         {"blocked", true},
                           {"block_reason", std::string(why)}, {"rule", rule}};
    if (!detail.empty()) data["detail"] = detail;
    if (proxy_.sink_) proxy_.sink_(AuditEvent{"network", std::move(data)});
  }

  void reply(int status, std::string_view phrase, const nlohmann::json& body) {
    handed_off_ = true;
    timer_.cancel();
    response_ = http::error_response(status, phrase, body, true);
    asio::async_write(socket_, asio::buffer(response_),
                      [self = shared_from_this()](const boost::system::error_code&, std::size_t) {
                        boost::system::error_code ignored;
                        self->socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
                        self->socket_.close(ignored);
                      });
  }

  ExplicitProxy& proxy_;
  std::weak_ptr<bool> alive_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  std::vector<std::uint8_t> chunk_;
  std::vector<std::uint8_t> buffer_;
  std::size_t parsed_ = 0;
  http::RequestParser parser_;
  std::shared_ptr<Dial> dial_;
  std::string response_;
  bool handed_off_ = false;
};

ExplicitProxy::ExplicitProxy(asio::io_context& io, const policy::Policy& policy,
                             std::shared_ptr<mitm::MitmContext> context, Config config,
                             EventSink sink)
    : io_(io),
      network_(policy.network),
      evaluator_(network_),
      context_(std::move(context)),
      config_(std::move(config)),
      sink_(std::move(sink)),
      resolver_(io, network_, config_.resolver),
      acceptor_(io) {}

ExplicitProxy::~ExplicitProxy() { alive_.reset(); }

void ExplicitProxy::start() {
  acceptor_.open(config_.listen.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(config_.listen);
  acceptor_.listen();
  accept();
}

void ExplicitProxy::accept() {
  acceptor_.async_accept([this, alive = std::weak_ptr<bool>(alive_)](
                             const boost::system::error_code& ec, asio::ip::tcp::socket socket) {
    if (alive.expired()) return;
    if (!ec) {
      ++counters_.connections;
      std::make_shared<Connection>(*this, std::move(socket))->start();
    }
    if (acceptor_.is_open()) accept();
  });
}

}  // namespace airlock::relay
