// Channel multiplexer between API clients and the guest; see router.hpp.
#include "runtime/vm/router.hpp"

#include <algorithm>

#include "protocol/messages.hpp"

namespace airlock::runtime {

namespace {

using protocol::Frame;
using protocol::FrameType;

const std::set<std::string>& host_ops() {
  static const std::set<std::string> ops = {"status", "stop", "events"};
  return ops;
}

// Ops a client may send on a channel that already has a running request.
const std::set<std::string>& in_flight_ops() {
  static const std::set<std::string> ops = {"signal", "resize", "cancel"};
  return ops;
}

nlohmann::json parse_object(const std::string& payload) {
  nlohmann::json j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return nlohmann::json();
  return j;
}

std::string op_of(const nlohmann::json& j) {
  auto it = j.find("op");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Frame control(std::uint32_t channel, const nlohmann::json& j) {
  return Frame{FrameType::control, channel,
               j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

bool shell_safe(const std::string& word) {
  if (word.empty()) return false;
  return std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("-_./=:,+@%").find(c) != std::string_view::npos;
  });
}

}  // namespace

std::string Router::shell_join(const nlohmann::json& request) {
  if (auto it = request.find("shell"); it != request.end() && it->is_string()) {
    return it->get<std::string>();
  }
  std::string out;
  auto argv = request.find("argv");
  if (argv == request.end() || !argv->is_array()) return out;
  for (const auto& arg : *argv) {
    if (!arg.is_string()) continue;
    const std::string word = arg.get<std::string>();
    if (!out.empty()) out += ' ';
    if (shell_safe(word)) {
      out += word;
      continue;
    }
    out += '\'';
    for (char c : word) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    out += '\'';
  }
  return out;
}

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

Router::Outputs Router::on_client_frame(ClientId client, const Frame& frame, std::int64_t now_ms) {
  Outputs out;
  const auto key = std::make_pair(client, frame.channel);
  auto mapped = by_client_.find(key);

  if (frame.type != FrameType::control) {
    // stdin_data and file_data follow a request on its channel; anything else is noise.
    const bool inbound = frame.type == FrameType::stdin_data || frame.type == FrameType::file_data;
    if (!inbound || mapped == by_client_.end()) {
      ++counters_.client_dropped;
      return out;
    }
    RouterOutput o;
    o.kind = RouterOutput::Kind::to_guest;
    o.frame = Frame{frame.type, mapped->second, frame.payload};
    out.push_back(std::move(o));
    return out;
  }

  nlohmann::json request = parse_object(frame.payload);
  const std::string op = op_of(request);
  if (op.empty()) {
    reply_error(out, client, frame.channel, "invalid", "control frame is not a JSON object with an op");
    return out;
  }
  if (host_ops().count(op) != 0) {
    RouterOutput o;
    o.kind = RouterOutput::Kind::host_request;
    o.client = client;
    o.frame.channel = frame.channel;
    o.json = std::move(request);
    out.push_back(std::move(o));
    return out;
  }
  if (mapped != by_client_.end()) {
    if (in_flight_ops().count(op) == 0) {
      reply_error(out, client, frame.channel, "busy", "channel already has a running request");
      return out;
    }
    RouterOutput o;
    o.kind = RouterOutput::Kind::to_guest;
    o.frame = Frame{FrameType::control, mapped->second, frame.payload};
    out.push_back(std::move(o));
    return out;
  }
  if (frame.channel == protocol::kConnectionChannel) {
    reply_error(out, client, frame.channel, "invalid", "requests need a nonzero channel");
    return out;
  }

  Kind kind;
  if (op == "exec") {
    kind = Kind::exec;
  } else if (op == "file.read") {
    kind = Kind::file_read;
  } else if (op == "file.write") {
    kind = Kind::file_write;
  } else if (op == "file.list" || op == "file.stat" || op == "file.mkdir" || op == "file.remove") {
    kind = Kind::one_reply;
  } else {
    reply_error(out, client, frame.channel, "invalid", "unknown op '" + op + "'");
    return out;
  }
  if (per_client_[client] >= kMaxChannelsPerClient || by_guest_.size() >= kMaxChannels) {
    if (per_client_[client] == 0) per_client_.erase(client);
    reply_error(out, client, frame.channel, "busy", "too many requests in flight");
    return out;
  }

  const std::uint32_t guest_channel = allocate_channel();
  Route route;
  route.client = client;
  route.client_channel = frame.channel;
  route.kind = kind;
  route.started_ms = now_ms;
  if (kind == Kind::exec) route.command = shell_join(request);
  by_guest_[guest_channel] = std::move(route);
  by_client_[key] = guest_channel;
  ++per_client_[client];

  RouterOutput o;
  o.kind = RouterOutput::Kind::to_guest;
  o.frame = Frame{FrameType::control, guest_channel,
                  kind == Kind::exec ? with_base_env(request, frame.payload) : frame.payload};
  out.push_back(std::move(o));
  return out;
}

std::string Router::with_base_env(const nlohmann::json& request, const std::string& payload) const {
  if (base_env_.empty()) return payload;
  nlohmann::json merged = request;
  nlohmann::json env = nlohmann::json::object();
  for (const auto& [k, v] : base_env_) env[k] = v;
  if (auto given = request.find("env"); given != request.end() && given->is_object()) {
    for (auto it = given->begin(); it != given->end(); ++it) env[it.key()] = it.value();
  } else if (given != request.end() && !given->is_null()) {
    return payload;  // malformed: let the guest refuse it as sent
  }
  merged["env"] = std::move(env);
  return protocol::dump(merged);
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
  if (op == "trust_ca.ok" || op == "trust_ca.error") {
    RouterOutput o;
    o.kind = RouterOutput::Kind::setup_reply;
    auto message = j.find("message");
    o.json = {{"op", op},
              {"message", message != j.end() && message->is_string()
                              ? message->get<std::string>().substr(0, 1024)
                              : ""}};
    out.push_back(std::move(o));
    return;
  }
  if (op == "log") {
    auto level = j.find("level");
    auto message = j.find("message");
    RouterOutput o;
    o.kind = RouterOutput::Kind::guest_log;
    o.json = {{"level", level != j.end() && level->is_string() ? level->get<std::string>() : "info"},
              {"message", message != j.end() && message->is_string()
                              ? message->get<std::string>().substr(0, 4096)
                              : ""}};
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

void Router::on_guest_route_control(Outputs& out, std::uint32_t guest_channel, Route& route,
                                    const Frame& frame, std::int64_t now_ms) {
  nlohmann::json reply = parse_object(frame.payload);
  const std::string op = op_of(reply);
  if (op.empty()) {
    ++counters_.guest_bad_control;
    return;
  }
  const std::size_t reply_at = out.size();
  if (!route.client_gone) {
    RouterOutput o;
    o.kind = RouterOutput::Kind::to_client;
    o.client = route.client;
    // The guest's bytes go on unchanged (only the channel is rewritten): re-encoding
    // could grow them past the frame cap.
    o.frame = Frame{FrameType::control, route.client_channel, frame.payload};
    out.push_back(std::move(o));
  }
  bool done = false;
  if (route.kind == Kind::exec) {
    if (op == "exit" || op == "error") {
      done = true;
      std::int64_t exit_code = -1;
      std::int64_t duration = now_ms - route.started_ms;
      if (op == "exit") {
        if (auto c = reply.find("exit_code"); c != reply.end() && c->is_number_integer()) {
          exit_code = c->get<std::int64_t>();
        }
        if (auto d = reply.find("duration_ms"); d != reply.end() && d->is_number_unsigned()) {
          duration = d->get<std::int64_t>();
        }
      }
      nlohmann::json exec = {{"command", route.command},
                             {"exit_code", exit_code},
                             {"duration_ms", std::max<std::int64_t>(0, duration)}};
      if (op == "error") {
        auto code = reply.find("code");
        exec["error"] = code != reply.end() && code->is_string() ? code->get<std::string>() : "io";
      }
      RouterOutput audit;
      audit.kind = RouterOutput::Kind::audit;
      audit.json = {{"type", "exec"}, {"exec", std::move(exec)}};
      // Before the reply: a client that has seen the exit finds the exec in the log.
      out.insert(out.begin() + static_cast<std::ptrdiff_t>(reply_at), std::move(audit));
    }
  } else if (route.kind == Kind::file_read) {
    if (op == "error") done = true;
    if (op == "ok") route.read_header_seen = true;
  } else {
    done = op == "ok" || op == "error";
  }
  if (done) end_route(guest_channel);
}

Router::Outputs Router::on_guest_frame(const Frame& frame, std::int64_t now_ms) {
  Outputs out;
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
  if (frame.type == FrameType::control) {
    on_guest_route_control(out, frame.channel, route, frame, now_ms);
    return out;
  }
  const bool expected =
      (route.kind == Kind::exec &&
       (frame.type == FrameType::stdout_data || frame.type == FrameType::stderr_data)) ||
      (route.kind == Kind::file_read && route.read_header_seen && frame.type == FrameType::file_data);
  if (!expected) {
    ++counters_.guest_bad_control;
    return out;
  }
  if (!route.client_gone) {
    RouterOutput o;
    o.kind = RouterOutput::Kind::to_client;
    o.client = route.client;
    o.frame = Frame{frame.type, route.client_channel, frame.payload};
    out.push_back(std::move(o));
  }
  if (route.kind == Kind::file_read && frame.payload.empty()) end_route(frame.channel);
  return out;
}

Router::Outputs Router::on_client_closed(ClientId client) {
  Outputs out;
  for (auto& [guest_channel, route] : by_guest_) {
    if (route.client != client || route.client_gone) continue;
    route.client_gone = true;
    RouterOutput o;
    o.kind = RouterOutput::Kind::to_guest;
    o.frame = control(guest_channel, {{"op", "cancel"}});
    out.push_back(std::move(o));
  }
  for (auto it = by_client_.begin(); it != by_client_.end();) {
    it = it->first.first == client ? by_client_.erase(it) : std::next(it);
  }
  per_client_.erase(client);
  return out;
}

Router::Outputs Router::on_guest_lost(const std::string& reason) {
  Outputs out;
  for (auto& [guest_channel, route] : by_guest_) {
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
