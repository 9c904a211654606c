// The standalone explicit proxy; see explicit_proxy.hpp.
#include "proxy/standalone/explicit_proxy.hpp"

#include <variant>

#include <boost/asio/steady_timer.hpp>

#include "policy/url.hpp"
#include "proxy/flow/driver.hpp"
#include "proxy/flow/stream.hpp"
#include "proxy/http/request_parser.hpp"
#include "proxy/http/serialize.hpp"
#include "proxy/mitm/http_layer.hpp"
#include "proxy/standalone/socket_flow.hpp"

namespace airlock::standalone {

class ExplicitProxy::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ExplicitProxy& proxy, asio::ip::tcp::socket socket)
      : proxy_(proxy), alive_(proxy.alive_), stream_(flow::ByteStream::create(std::move(socket))),
        timer_(proxy.io_), started_(std::chrono::steady_clock::now()) {}

  void start() {
    std::weak_ptr<Connection> weak = weak_from_this();
    timer_.expires_after(proxy_.config_.head_timeout);
    timer_.async_wait([weak](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->done_) return;
      self->done_ = true;
      self->record("", 0, "head_timeout", "", "no request head within the time allowed");
      self->stream_->reset();
    });
    stream_->set_handlers(flow::ByteStream::Handlers{
        [self = shared_from_this()](std::span<const std::uint8_t> data) {
          if (self->done_ || self->alive_.expired()) return;
          self->buffer_.insert(self->buffer_.end(), data.begin(), data.end());
          self->parse();
        },
        [self = shared_from_this()] { self->gone("closed"); },
        [self = shared_from_this()](const boost::system::error_code&) { self->gone("reset_by_guest"); },
        nullptr});
    stream_->read(true);
  }

 private:
  void gone(std::string_view how) {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    audit::Flow r = base("", 0);
    r.close_reason = std::string(how);
    r.request_bytes = buffer_.size();
    emit(std::move(r));
    stream_->close();
    stream_->set_handlers({});
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
  }

  void on_head(http::RequestHead head) {
    const bool tunnel = head.method == "CONNECT";
    std::optional<policy::Host> host;
    std::uint16_t port = 0;
    if (tunnel) {
      auto parsed = policy::parse_authority(head.target, 443);
      if (!parsed) return bad(parsed.error());
      host = parsed->first;
      port = parsed->second;
    } else {
      auto url = policy::parse_url(head.target);
      if (!url || url->scheme != "http") return bad("an explicit proxy takes CONNECT or an absolute http:// URL");
      host = url->host;
      port = url->port;
    }
    const std::string host_text = host->to_string();
    policy::Admission admission = proxy_.context_->policy().admit(*host, port);
    if (!admission.admitted()) {
      ++proxy_.counters_.refused;
      record(host_text, port, std::string(admission.reason), admission.rule.to_string(), "");
      reply(403, "Forbidden", mitm::refusal_body(admission.reason, host_text));
      return;
    }
    done_ = true;
    timer_.cancel();
    std::vector<std::uint8_t> rest;
    if (tunnel) {
      rest.assign(buffer_.begin() + static_cast<std::ptrdiff_t>(parsed_), buffer_.end());
      const std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
      stream_->write(std::vector<std::uint8_t>(ok.begin(), ok.end()));
    } else {
      rest = std::move(buffer_);  // the request itself goes through the flow
    }
    EventSink sink = proxy_.sink_;
    auto driver = std::make_shared<flow::FlowDriver>(proxy_.io_, proxy_.context_, std::move(*admission.grant),
                                                     proxy_.dialer_, &proxy_.pool_, [sink](audit::Event e) {
                                                       if (sink) sink(std::move(e));
                                                     });
    auto guest = std::make_shared<SocketGuestFlow>(stream_, std::move(rest));
    stream_.reset();
    guest->start(std::move(driver));
  }

  void bad(const std::string& why) {
    ++proxy_.counters_.bad_requests;
    record("", 0, std::string(mitm::reason::bad_request), "", why);
    reply(400, "Bad Request", mitm::refusal_body(mitm::reason::bad_request, ""));
  }

  audit::Flow base(const std::string& host, std::uint16_t port) const {
    audit::Flow r;
    r.protocol = "proxy";
    r.host = host;
    r.port = port;
    r.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                          started_).count();
    return r;
  }

  void record(const std::string& host, std::uint16_t port, std::string why, std::string rule, std::string detail) {
    audit::Flow r = base(host, port);
    r.blocked = true;
    r.block_reason = std::move(why);
    r.rule = std::move(rule);
    r.detail = std::move(detail);
    r.close_reason = "refused";
    r.request_bytes = buffer_.size();
    emit(std::move(r));
  }

  void emit(audit::Event e) {
    if (proxy_.sink_ && !alive_.expired()) proxy_.sink_(std::move(e));
  }

  void reply(int status, std::string_view phrase, const nlohmann::json& body) {
    done_ = true;
    timer_.cancel();
    const std::string response = http::error_response(status, phrase, body, true);
    stream_->set_handlers({});
    stream_->write(std::vector<std::uint8_t>(response.begin(), response.end()));
    stream_->close();
  }

  ExplicitProxy& proxy_;
  std::weak_ptr<bool> alive_;
  std::shared_ptr<flow::ByteStream> stream_;
  asio::steady_timer timer_;
  std::chrono::steady_clock::time_point started_;
  std::vector<std::uint8_t> buffer_;
  std::size_t parsed_ = 0;
  http::RequestParser parser_;
  bool done_ = false;
};

ExplicitProxy::ExplicitProxy(asio::io_context& io, std::shared_ptr<mitm::MitmContext> context, Config config,
                             EventSink sink)
    : io_(io),
      context_(std::move(context)),
      config_(std::move(config)),
      sink_(std::move(sink)),
      resolver_(io, context_->policy().network(), config_.resolver),
      dialer_(io, resolver_, context_->policy(), config_.dialer),
      pool_(io),
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
  acceptor_.async_accept([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec,
                                                                   asio::ip::tcp::socket socket) {
    if (alive.expired()) return;
    if (!ec) {
      ++counters_.connections;
      std::make_shared<Connection>(*this, std::move(socket))->start();
    }
    if (acceptor_.is_open()) accept();
  });
}

}  // namespace airlock::standalone
