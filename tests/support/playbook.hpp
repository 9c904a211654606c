// Playbook tests for the MITM's layers, mitmproxy's way: feed a layer events, and check
// the commands it gives back, with no sockets and a fake clock.
//
//   Playbook p(std::make_unique<TunnelLayer>(Bytes{}));
//   p >> Start{};                         // feed one event
//   CHECK(p.took("open"));                // commands since the last check, as text
//   p >> DataIn{Side::guest, bytes("x")};
//   CHECK(p.took("send upstream 1"));
//
// Commands are described as short words ("send guest 5", "close upstream reset", "open",
// "emit network", "note refused opaque_not_allowed") so an expectation reads like the
// protocol it checks.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/mitm/layer.hpp"

namespace airlock::mitm::testing {

inline Bytes bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }
inline std::string text(const Bytes& b) { return std::string(b.begin(), b.end()); }

inline std::string describe(const Command& command) {
  auto side = [](Side s) { return s == Side::guest ? std::string("guest") : std::string("upstream"); };
  if (const auto* send = std::get_if<Send>(&command)) return "send " + side(send->side) + " " + std::to_string(send->bytes.size());
  if (const auto* close = std::get_if<Close>(&command))
    return "close " + side(close->side) + (close->reset ? " reset" : "");
  if (std::holds_alternative<Open>(command)) return "open";
  if (const auto* emit = std::get_if<Emit>(&command)) return "emit " + std::string(audit::type_of(emit->event));
  if (const auto* note = std::get_if<Note>(&command)) {
    std::string out = "note";
    if (!note->protocol.empty()) out += " " + note->protocol;
    if (!note->block_reason.empty()) out += " refused " + note->block_reason;
    if (!note->error.empty()) out += " error " + note->error;
    return out;
  }
  return "?";
}

class Playbook {
 public:
  explicit Playbook(std::unique_ptr<Layer> layer) : layer_(std::move(layer)) {}

  Playbook& operator>>(Event event) {
    Commands out;
    layer_->handle(std::move(event), now, out);
    for (auto& c : out) {
      log_.push_back(describe(c));
      commands_.push_back(std::move(c));
    }
    return *this;
  }

  // The commands since the last took()/clear(), joined by ", ".
  std::string took() {
    std::string out;
    for (std::size_t i = seen_; i < log_.size(); ++i) out += (out.empty() ? "" : ", ") + log_[i];
    seen_ = log_.size();
    return out;
  }
  bool took(std::string_view expected) { return took() == expected; }

  // Bytes of every Send to `side` so far.
  std::string sent(Side side) const {
    std::string out;
    for (const auto& c : commands_)
      if (const auto* s = std::get_if<Send>(&c); s && s->side == side) out += text(s->bytes);
    return out;
  }
  template <typename T>
  std::vector<T> commands() const {
    std::vector<T> out;
    for (const auto& c : commands_)
      if (const auto* t = std::get_if<T>(&c)) out.push_back(*t);
    return out;
  }
  Layer& layer() { return *layer_; }
  void advance(std::chrono::milliseconds ms) { now += ms; }

  Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);

 private:
  std::unique_ptr<Layer> layer_;
  std::vector<std::string> log_;
  Commands commands_;
  std::size_t seen_ = 0;
};

}  // namespace airlock::mitm::testing
