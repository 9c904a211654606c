// The guest's requests; see request_parser.hpp.
#include "proxy/http/request_parser.hpp"

#include "proxy/http/llhttp_engine.hpp"

namespace airlock::http {

class RequestParser::Impl : public detail::Engine {
 public:
  explicit Impl(const Limits& limits) : Engine(HTTP_REQUEST, limits, /*keep_body=*/true) {}

  RequestHead head;  // filled by judge_head, handed out with the head event

 protected:
  std::string_view judge_head() override {
    head = RequestHead{};
    head.version_minor = parser_.http_minor;
    if (head.version_minor == 1 && host_headers_ == 0) return "missing_host";
    head.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
    head.target = url_;
    head.headers = std::move(headers_);
    headers_.clear();
    head.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
    head.chunked = (parser_.flags & F_CHUNKED) != 0;
    // Our check saw the trimmed value "chunked"; llhttp frames by its own reading of the
    // raw one (it doesn't take "chunked<TAB>" as chunked, and would fail right after this
    // head). The two must agree, or the head would go upstream saying chunked while we
    // framed no body.
    if (!head.chunked && find_header(head.headers, "transfer-encoding") != nullptr)
      return "bad_transfer_encoding";
    if ((parser_.flags & F_CONTENT_LENGTH) != 0) head.content_length = parser_.content_length;
    const Header* expect = find_header(head.headers, "expect");
    head.expect_continue = expect != nullptr && iequals(expect->value, "100-continue");
    head.upgrade = parser_.upgrade != 0;
    return {};
  }
};

RequestParser::RequestParser(const Limits& limits) : impl_(std::make_unique<Impl>(limits)) {}
RequestParser::~RequestParser() = default;
RequestParser::RequestParser(RequestParser&&) noexcept = default;
RequestParser& RequestParser::operator=(RequestParser&&) noexcept = default;

bool RequestParser::failed() const { return impl_->failed(); }
bool RequestParser::upgraded() const { return impl_->upgraded(); }

std::size_t RequestParser::feed(std::span<const std::uint8_t> data, std::vector<RequestEvent>& out) {
  Impl& engine = *impl_;
  if (engine.failed() || engine.upgraded()) return 0;

  // Appends the events of one run; true when feed() has to return now.
  auto report = [&](const detail::Step& step) {
    if (auto body = engine.take_body(); !body.empty()) out.push_back(BodyEvent{std::move(body)});
    switch (step.stop) {
      case detail::Stop::need_more:
        return false;
      case detail::Stop::head:
        out.push_back(RequestHeadEvent{std::move(engine.head)});
        return true;
      case detail::Stop::message_complete:
        out.push_back(MessageCompleteEvent{});
        return false;
      case detail::Stop::upgrade:
        out.push_back(UpgradeEvent{});
        return true;
      case detail::Stop::error:
        out.push_back(ParseErrorEvent{engine.error()});
        return true;
    }
    return true;
  };

  std::size_t pos = 0;
  while (pos < data.size() || engine.paused()) {
    const detail::Step step = engine.run(data.subspan(pos));
    pos += step.consumed;
    if (step.stop == detail::Stop::head) {
      const bool has_body = engine.head.chunked || engine.head.content_length.value_or(0) > 0;
      report(step);
      // Without a body the message ends (or upgrades) with no further byte: say so now.
      if (!has_body) report(engine.run({}));
      return pos;
    }
    if (report(step)) return pos;
  }
  return pos;
}

}  // namespace airlock::http
