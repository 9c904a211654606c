// events.*: a sandbox's audit events, replayed from a seq and then live; see session.hpp.
//
// Each subscription has a supervisor connection of its own: unsubscribing closes it,
// which is how the supervisor learns to stop following. Events arrive as notifications
// {subscription_id, event}; when the stream ends (the sandbox stopped, or follow was
// false and the history is out) an events.end notification says so. A stopped
// sandbox's log is read from its events.jsonl, on a job.
#include <fstream>

#include "protocol/messages.hpp"
#include "runtime/api/session_state.hpp"
#include "runtime/vm/sandboxes.hpp"

namespace airlock::api {

using nlohmann::json;
using protocol::Frame;
using protocol::FrameType;

void Session::events_subscribe(const SubscribeParams& p, Reply reply) {
  std::string id;
  try {
    id = runtime::resolve_sandbox_id(home_, p.id);
  } catch (const std::exception& e) {
    return reply(error_from_exception(e));
  }
  const std::string subscription_id = "sub-" + std::to_string(next_subscription_++);
  std::weak_ptr<Session> weak = weak_from_this();
  runtime::SandboxInfo info = runtime::inspect_sandbox(home_, id);
  if (!info.alive) {
    // History only: the log on disk, in seq order, then the end.
    reply(json{{"subscription_id", subscription_id}});
    const auto file = info.paths.events;
    const std::uint64_t from = p.from_seq;
    jobs_.run(
        [file, from]() -> ApiResult {
          json events = json::array();
          std::ifstream in(file, std::ios::binary);
          std::string line;
          while (std::getline(in, line)) {
            auto e = nlohmann::ordered_json::parse(line, nullptr, false);
            if (e.is_discarded() || !e.is_object()) continue;
            auto seq = e.find("seq");
            if (seq == e.end() || !seq->is_number_unsigned() || seq->get<std::uint64_t>() < from) continue;
            events.push_back(json::parse(line));
          }
          return events;
        },
        [weak, subscription_id](ApiResult result) {
          auto self = weak.lock();
          if (!self || self->closing_ || !self->hooks_.notify) return;
          if (auto* events = std::get_if<json>(&result)) {
            for (auto& e : *events) self->hooks_.notify("event", {{"subscription_id", subscription_id}, {"event", e}});
          }
          self->hooks_.notify("events.end", {{"subscription_id", subscription_id}, {"reason", "the sandbox is stopped"}});
        });
    return;
  }
  auto link = SupervisorLink::connect(io_, info.paths.api_sock);
  if (!link) return reply(ApiError{ErrorKind::vm_not_running, "sandbox " + id + ": " + link.error(), "", nullptr, 0});
  auto sub = std::make_unique<Subscription>();
  sub->link = *link;
  if (paused_) sub->link->set_reading(false);
  sub->channel = sub->link->open([weak, subscription_id](const Frame* frame) {
    auto self = weak.lock();
    if (!self) return;
    if (frame == nullptr) return self->end_subscription(subscription_id, "the sandbox stopped");
    if (frame->type != FrameType::control) return;
    // Ordered: an event keeps the field order it was written with (seq, type, ...).
    auto message = nlohmann::ordered_json::parse(frame->payload, nullptr, false);
    if (message.is_discarded() || !message.is_object()) return;
    auto op = message.find("op");
    const std::string name = op != message.end() && op->is_string() ? op->get<std::string>() : "";
    if (name == "event") {
      auto e = message.find("event");
      if (e != message.end() && e->is_object() && self->hooks_.notify) {
        self->hooks_.notify("event", {{"subscription_id", subscription_id}, {"event", json::parse(e->dump())}});
        self->update_flow_control();
      }
    } else if (name == "ok") {
      self->end_subscription(subscription_id, "the event stream ended");
    } else if (name == "error") {
      self->end_subscription(subscription_id, "refused: " + protocol::get_string(json::parse(frame->payload), "message").value_or(""));
    }
  });
  sub->link->send_control(sub->channel, {{"op", "events"}, {"from_seq", p.from_seq}, {"follow", p.follow}});
  subscriptions_[subscription_id] = std::move(sub);
  // Answered before any event can arrive (they come from the socket, later).
  reply(json{{"subscription_id", subscription_id}});
}

void Session::end_subscription(const std::string& subscription_id, const std::string& reason) {
  auto it = subscriptions_.find(subscription_id);
  if (it == subscriptions_.end()) return;
  auto link = it->second->link;
  subscriptions_.erase(it);
  link->shut_down();
  if (hooks_.notify) hooks_.notify("events.end", {{"subscription_id", subscription_id}, {"reason", reason}});
}

void Session::events_unsubscribe(const std::string& subscription_id, Reply reply) {
  auto it = subscriptions_.find(subscription_id);
  if (it == subscriptions_.end()) {
    return reply(ApiError{ErrorKind::invalid_config, "no subscription \"" + subscription_id.substr(0, 64) + "\"",
                          "not_found", nullptr, 0});
  }
  auto link = it->second->link;
  subscriptions_.erase(it);
  link->shut_down();  // the supervisor drops the follower with the connection
  reply(json::object());
}

}  // namespace airlock::api
