// Channel multiplexer between API clients and the guest; see router.hpp.
#include "runtime/vm/router.hpp"

#include <algorithm>
#include <set>

#include "protocol/messages.hpp"
#include "runtime/vm/host_ops.hpp"

namespace airlock::runtime {

namespace {

using protocol::Frame;
using protocol::FrameType;

nlohmann::json parse_object(const std::string& payload) {
  nlohmann::json j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return nlohmann::json();
  return j;
}

std::string op_of(const nlohmann::json& j) {
  if (!j.is_object()) return {};
  auto it = j.find("op");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Frame control(std::uint32_t channel, const nlohmann::json& j) {
  return Frame{FrameType::control, channel,
               j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

}  // namespace

std::uint32_t Router::allocate_channel() {
  // Skip 0 and ids still in use (after a wrap-around of 2^32 requests).
  for (;;) {
    const std::uint32_t c = next_channel_++;
    if (c != 0 && by_guest_.find(c) == by_guest_.end()) return c;
  }
}

void Router::reply_error(Outputs& out, ClientId client, std::uint32_t channel,
                         const std::string& code, const std::string& message) {
  RouterOutput o;
  o.kind = RouterOutput::Kind::to_client;
  o.client = client;
  o.frame = control(channel, {{"op", "error"}, {"code", code}, {"message", message}});
  out.push_back(std::move(o));
}

void Router::end_route(std::uint32_t guest_channel) {
  auto it = by_guest_.find(guest_channel);
  if (it == by_guest_.end()) return;
  const Route& r = it->second;
  if (!r.client_gone) {
    by_client_.erase({r.client, r.client_channel});
    auto pc = per_client_.find(r.client);
    if (pc != per_client_.end() && pc->second > 0 && --pc->second == 0) per_client_.erase(pc);
  }
  by_guest_.erase(it);
}

void Router::on_client_in_flight(Outputs& out, ClientId client, const Frame& frame,
                                 std::uint32_t guest_channel, const nlohmann::json& request) {
  const Route& route = by_guest_.at(guest_channel);
  const std::string op = op_of(request);
  bool allowed = false;
  if (route.is_exec) {
    allowed = frame.type == FrameType::stdin_data ||
              (frame.type == FrameType::control && ExecService::is_in_flight_op(op));
  } else {
    allowed = FileService::client_may_send(route.file.kind, frame, op);
  }
  if (!allowed) {
    if (frame.type == FrameType::control) {
      reply_error(out, client, frame.channel, "busy", "channel already has a running request");
    } else {
      ++counters_.client_dropped;
    }
    return;
  }
  RouterOutput o;
  o.kind = RouterOutput::Kind::to_guest;
  o.frame = Frame{frame.type, guest_channel, frame.payload};
  out.push_back(std::move(o));
}

Router::Outputs Router::on_client_frame(ClientId client, const Frame& frame, std::int64_t now_ms) {
  Outputs out;
  const auto key = std::make_pair(client, frame.channel);
  auto mapped = by_client_.find(key);
  nlohmann::json request;
  if (frame.type == FrameType::control) request = parse_object(frame.payload);
  const std::string op = op_of(request);

  if (mapped != by_client_.end()) {
    on_client_in_flight(out, client, frame, mapped->second, request);
    return out;
  }
  if (frame.type != FrameType::control) {
    // Data for no request in flight (the tail of a refused upload): nowhere to go.
    ++counters_.client_dropped;
    return out;
  }
  if (op.empty()) {
    reply_error(out, client, frame.channel, "invalid", "control frame is not a JSON object with an op");
    return out;
  }
  if (is_host_op(op)) {
    RouterOutput o;
    o.kind = RouterOutput::Kind::host_request;
    o.client = client;
    o.frame.channel = frame.channel;
    o.json = std::move(request);
    out.push_back(std::move(o));
    return out;
  }
  if (frame.channel == protocol::kConnectionChannel) {
    reply_error(out, client, frame.channel, "invalid", "requests need a nonzero channel");
    return out;
  }
  const bool is_exec = op == "exec";
  const auto file_kind = FileService::route_for(op);
  if (!is_exec && !file_kind) {
    reply_error(out, client, frame.channel, "invalid", "unknown op '" + op + "'");
    return out;
  }
  if (per_client_[client] >= kMaxChannelsPerClient || by_guest_.size() >= kMaxChannels) {
    if (per_client_[client] == 0) per_client_.erase(client);
    reply_error(out, client, frame.channel, "busy", "too many requests in flight");
    return out;
  }

  // The guest's silence counts from the first request that waits on it.
  if (!waiting()) {
    last_guest_frame_ms_ = now_ms;
    ping_sent_ms_.reset();
  }
  const std::uint32_t guest_channel = allocate_channel();
  Route route;
  route.client = client;
  route.client_channel = frame.channel;
  route.is_exec = is_exec;
  if (is_exec) route.exec = ExecService::begin(request, now_ms);
  if (file_kind) route.file.kind = *file_kind;
  by_guest_[guest_channel] = std::move(route);
  by_client_[key] = guest_channel;
  ++per_client_[client];

  RouterOutput o;
  o.kind = RouterOutput::Kind::to_guest;
  o.frame = Frame{FrameType::control, guest_channel,
                  is_exec ? exec_.guest_payload(request, frame.payload) : frame.payload};
  out.push_back(std::move(o));
  return out;
}

void Router::on_guest_connection_frame(Outputs& out, const Frame& frame) {
  if (frame.type != FrameType::control) {
    ++counters_.guest_bad_control;
    return;
  }
  nlohmann::json j = parse_object(frame.payload);
  const std::string op = op_of(j);
  if (op == "hello") {
    RouterOutput o;
    o.kind = RouterOutput::Kind::hello;
    o.json = std::move(j);
    out.push_back(std::move(o));
    return;
  }
  auto bounded_string = [&](const char* key, std::size_t cap, const char* fallback) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>().substr(0, cap) : std::string(fallback);
  };
  if (op == "trust_ca.ok" || op == "trust_ca.error") {
    RouterOutput o;
    o.kind = RouterOutput::Kind::setup_reply;
    o.json = {{"op", op}, {"message", bounded_string("message", 1024, "")}};
    out.push_back(std::move(o));
    return;
  }
  if (op == "pong") return;  // the liveness probe's answer (any frame counts)
  if (op == "log") {
    RouterOutput o;
    o.kind = RouterOutput::Kind::guest_log;
    o.json = {{"level", bounded_string("level", 16, "info")}, {"message", bounded_string("message", 4096, "")}};
    out.push_back(std::move(o));
    return;
  }
  if (op != "event") {
    ++counters_.guest_bad_control;
    return;
  }
  // File event: rebuilt field by field so only known, bounded values reach the audit log.
  static const std::set<std::string> file_ops = {"create", "write", "remove", "rename", "mkdir"};
  auto file = j.find("file");
  if (file == j.end() || !file->is_object()) {
    ++counters_.guest_bad_event;
    return;
  }
  auto fop = file->find("op");
  auto path = file->find("path");
  if (fop == file->end() || !fop->is_string() || file_ops.count(fop->get<std::string>()) == 0 ||
      path == file->end() || !path->is_string() || path->get<std::string>().size() > kMaxPathBytes) {
    ++counters_.guest_bad_event;
    return;
  }
  nlohmann::json event = {{"op", fop->get<std::string>()}, {"path", path->get<std::string>()}};
  if (auto size = file->find("size"); size != file->end() && size->is_number_unsigned()) {
    event["size"] = size->get<std::uint64_t>();
  }
  if (auto from = file->find("from"); from != file->end() && from->is_string() &&
                                      from->get<std::string>().size() <= kMaxPathBytes) {
    event["from"] = from->get<std::string>();
  }
  RouterOutput o;
  o.kind = RouterOutput::Kind::audit;
  o.json = {{"type", "file"}, {"file", std::move(event)}};
  out.push_back(std::move(o));
}

void Router::forward_to_client(Outputs& out, const Route& route, const Frame& frame) {
  if (route.client_gone) return;
  RouterOutput o;
  o.kind = RouterOutput::Kind::to_client;
  o.client = route.client;
  // The guest's bytes go on unchanged (only the channel is rewritten): re-encoding
  // could grow them past the frame cap.
  o.frame = Frame{frame.type, route.client_channel, frame.payload};
  out.push_back(std::move(o));
}

Router::Outputs Router::on_guest_frame(const Frame& frame, std::int64_t now_ms) {
  Outputs out;
  last_guest_frame_ms_ = now_ms;
  ping_sent_ms_.reset();
  if (frame.channel == protocol::kConnectionChannel) {
    on_guest_connection_frame(out, frame);
    return out;
  }
  auto it = by_guest_.find(frame.channel);
  if (it == by_guest_.end()) {
    ++counters_.guest_unknown_channel;
    return out;
  }
  Route& route = it->second;
  std::string op;
  nlohmann::json reply;
  if (frame.type == FrameType::control) {
    reply = parse_object(frame.payload);
    op = op_of(reply);
    if (op.empty()) {
      ++counters_.guest_bad_control;
      return out;
    }
  }
  if (route.is_exec) {
    const bool output = frame.type == FrameType::stdout_data || frame.type == FrameType::stderr_data;
    if (!output && frame.type != FrameType::control) {
      ++counters_.guest_bad_control;
      return out;
    }
    if (frame.type == FrameType::control) {
      if (auto audit = ExecService::on_reply(route.exec, op, reply, now_ms)) {
        // Before the reply: a client that has seen the exit finds the exec in the log.
        RouterOutput a;
        a.kind = RouterOutput::Kind::audit;
        a.json = std::move(*audit);
        out.push_back(std::move(a));
        forward_to_client(out, route, frame);
        end_route(frame.channel);
        return out;
      }
    }
    forward_to_client(out, route, frame);
    return out;
  }
  const FileService::GuestVerdict verdict = FileService::on_guest_frame(route.file, frame, op);
  if (!verdict.forward) {
    ++counters_.guest_bad_control;
    return out;
  }
  forward_to_client(out, route, frame);
  if (verdict.done) end_route(frame.channel);
  return out;
}

Router::Outputs Router::on_client_closed(ClientId client) {
  Outputs out;
  for (auto& [guest_channel, route] : by_guest_) {
    if (route.client != client || route.client_gone) continue;
    route.client_gone = true;
    RouterOutput o;
    o.kind = RouterOutput::Kind::to_guest;
    // An exec is killed; a file transfer ends in the guest on the next frame it can't
    // make sense of (cancel is not an op it expects), which also discards its temp file.
    o.frame = control(guest_channel, {{"op", "cancel"}});
    out.push_back(std::move(o));
  }
  for (auto it = by_client_.begin(); it != by_client_.end();) {
    it = it->first.first == client ? by_client_.erase(it) : std::next(it);
  }
  per_client_.erase(client);
  return out;
}

Router::Outputs Router::on_tick(std::int64_t now_ms) {
  Outputs out;
  if (!waiting()) {
    ping_sent_ms_.reset();
    return out;
  }
  if (!ping_sent_ms_ && now_ms - last_guest_frame_ms_ >= kPingAfterMs) {
    ping_sent_ms_ = now_ms;
    RouterOutput o;
    o.kind = RouterOutput::Kind::to_guest;
    o.frame = control(protocol::kConnectionChannel, {{"op", "ping"}});
    out.push_back(std::move(o));
  } else if (ping_sent_ms_ && now_ms - *ping_sent_ms_ >= kWedgedAfterMs) {
    ping_sent_ms_.reset();
    last_guest_frame_ms_ = now_ms;  // the next request waits its own full term
    fail_open_routes(out, "timeout",
                     "the guest has not answered for " + std::to_string((kPingAfterMs + kWedgedAfterMs) / 1000) +
                         " s (guest-init is stopped or wedged; see the VM's console.log)",
                     now_ms);
  }
  return out;
}

bool Router::waiting() const {
  return std::any_of(by_guest_.begin(), by_guest_.end(), [](const auto& entry) { return !entry.second.client_gone; });
}

void Router::fail_open_routes(Outputs& out, const std::string& code, const std::string& message,
                              std::int64_t now_ms) {
  std::vector<std::uint32_t> ended;
  for (auto& [guest_channel, route] : by_guest_) {
    if (route.client_gone) continue;
    if (route.is_exec) {  // the exec's record says how it ended: never answered
      if (auto audit = ExecService::on_reply(route.exec, "error", {{"code", "guest_unresponsive"}}, now_ms)) {
        RouterOutput a;
        a.kind = RouterOutput::Kind::audit;
        a.json = std::move(*audit);
        out.push_back(std::move(a));
      }
    }
    reply_error(out, route.client, route.client_channel, code, message);
    RouterOutput o;
    o.kind = RouterOutput::Kind::to_guest;
    o.frame = control(guest_channel, {{"op", "cancel"}});
    out.push_back(std::move(o));
    ended.push_back(guest_channel);
  }
  // Forgotten: should the guest wake up, its late frames are dropped (and counted) and
  // make no second record.
  for (std::uint32_t channel : ended) end_route(channel);
}

Router::Outputs Router::on_guest_lost(const std::string& reason, std::int64_t now_ms) {
  Outputs out;
  for (auto& [guest_channel, route] : by_guest_) {
    if (route.is_exec) {  // killed with its VM: the record says so
      if (auto audit = ExecService::on_reply(route.exec, "error", {{"code", "vm_stopped"}}, now_ms)) {
        RouterOutput a;
        a.kind = RouterOutput::Kind::audit;
        a.json = std::move(*audit);
        out.push_back(std::move(a));
      }
    }
    if (!route.client_gone) {
      reply_error(out, route.client, route.client_channel, "vm_stopped", reason);
    }
  }
  by_guest_.clear();
  by_client_.clear();
  per_client_.clear();
  return out;
}

}  // namespace airlock::runtime
