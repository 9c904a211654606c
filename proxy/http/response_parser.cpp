// The upstream's responses; see response_parser.hpp.
#include "proxy/http/response_parser.hpp"

#include "proxy/http/llhttp_engine.hpp"

namespace airlock::http {

class ResponseParser::Impl : public detail::Engine {
 public:
  Impl(const Limits& limits, Options o) : Engine(HTTP_RESPONSE, limits, o.keep_body), options(o) {}

  Options options;

  std::deque<std::string> methods;  // of the requests still waiting, oldest first
  ResponseHead head;                // filled by judge_head
  bool informational = false;       // of the current response

  // Appends the events of one stop; true when feed() has to return now.
  bool report(detail::Stop stop, std::vector<ResponseEvent>& out) {
    if (options.keep_body) {
      if (auto data = take_body(); !data.empty()) {
        const std::size_t n = data.size();
        out.push_back(ResponseBodyEvent{n, std::move(data)});
      }
    } else if (const std::size_t n = take_body_count(); n > 0) {
      out.push_back(ResponseBodyEvent{n, {}});
    }
    switch (stop) {
      case detail::Stop::need_more:
        return false;
      case detail::Stop::head:
        out.push_back(ResponseHeadEvent{std::move(head), informational});
        return false;
      case detail::Stop::message_complete:
        if (!informational) {
          if (!methods.empty()) methods.pop_front();
          out.push_back(ResponseCompleteEvent{});
          return options.stop_after_message;
        }
        return false;
      case detail::Stop::upgrade:
        if (!methods.empty()) methods.pop_front();
        out.push_back(ResponseUpgradeEvent{});
        return true;
      case detail::Stop::error:
        out.push_back(ResponseErrorEvent{error()});
        return true;
    }
    return true;
  }

 protected:
  std::string_view judge_head() override {
    if (methods.empty()) return "unexpected_response";
    const int status = parser_.status_code;
    if (status < 100 || status > 599) return "bad_response";
    const std::string& method = methods.front();
    informational = status / 100 == 1 && status != 101;
    bool no_body = status / 100 == 1 || status == 204 || status == 304 || method == "HEAD";
    // llhttp switches protocols on 101 only when Upgrade and Connection: upgrade came
    // with it, and knows nothing of CONNECT requests; the status decides here.
    const bool switching = status == 101 || (method == "CONNECT" && status / 100 == 2);
    parser_.upgrade = switching ? 1 : 0;
    if (switching) no_body = true;
    if (no_body) parser_.flags = static_cast<std::uint16_t>(parser_.flags | F_SKIPBODY);

    head = ResponseHead{};
    head.status = status;
    head.reason = status_text_;
    head.version_minor = parser_.http_minor;
    head.headers = std::move(headers_);
    headers_.clear();
    head.keep_alive = !switching && llhttp_should_keep_alive(&parser_) != 0;
    return {};
  }
};

ResponseParser::ResponseParser(const Limits& limits, Options options)
    : impl_(std::make_unique<Impl>(limits, options)) {}
ResponseParser::~ResponseParser() = default;
ResponseParser::ResponseParser(ResponseParser&&) noexcept = default;
ResponseParser& ResponseParser::operator=(ResponseParser&&) noexcept = default;

void ResponseParser::expect_response_to(std::string_view method) {
  impl_->methods.emplace_back(method);
}

std::size_t ResponseParser::pending() const { return impl_->methods.size(); }
bool ResponseParser::failed() const { return impl_->failed(); }
bool ResponseParser::upgraded() const { return impl_->upgraded(); }

std::size_t ResponseParser::feed(std::span<const std::uint8_t> data, std::vector<ResponseEvent>& out) {
  Impl& engine = *impl_;
  if (engine.failed() || engine.upgraded()) return 0;
  std::size_t pos = 0;
  while (pos < data.size() || engine.paused()) {
    const detail::Step step = engine.run(data.subspan(pos));
    pos += step.consumed;
    if (engine.report(step.stop, out)) return pos;
  }
  return pos;
}

void ResponseParser::finish(std::vector<ResponseEvent>& out) {
  Impl& engine = *impl_;
  if (engine.failed() || engine.upgraded()) return;
  feed({}, out);  // transitions still pending after the last stop
  if (engine.failed() || engine.upgraded()) return;
  engine.report(engine.finish(), out);
}

}  // namespace airlock::http
