// exec.*: commands in a sandbox, streamed as notifications or buffered; see session.hpp.
//
// exec.start answers once the guest has started the command (so a command that can't
// start is an error reply, never a notification), then exec.stdout / exec.stderr carry
// its output (base64) and exec.exit its end. exec.run collects the output (at most
// kMaxBufferedOutput per stream; beyond that it is cut and the result says so) and
// answers once with everything; a command killed by its timeout_seconds is a "timeout"
// error whose data holds what it printed.
#include "runtime/api/base64.hpp"
#include "runtime/api/session_state.hpp"
#include "protocol/messages.hpp"

namespace airlock::api {

using nlohmann::json;
using protocol::Frame;
using protocol::FrameType;

namespace {

json exit_json(const json& reply) {
  json out = {{"exit_code", protocol::get_int(reply, "exit_code").value_or(-1)},
              {"duration_ms", protocol::get_int(reply, "duration_ms").value_or(0)},
              {"timed_out", protocol::get_bool(reply, "timed_out").value_or(false)}};
  const auto signal = protocol::get_int(reply, "signal");
  out["signal"] = signal ? json(*signal) : json(nullptr);
  const auto name = protocol::get_string(reply, "signal_name");
  out["signal_name"] = name ? json(name->substr(0, 16)) : json(nullptr);
  return out;
}

}  // namespace

void Session::exec_start(ExecParams p, bool buffered, Reply reply) {
  auto link = link_for(p.id);
  if (auto* e = std::get_if<ApiError>(&link)) {
    reply(*e);
    return;
  }
  auto exec = std::make_unique<Exec>();
  exec->link = std::get<std::shared_ptr<SupervisorLink>>(link);
  exec->sandbox = p.id;
  exec->buffered = buffered;
  exec->stdin_open = p.stdin_open;
  exec->reply = std::move(reply);
  const std::string exec_id = "ex-" + std::to_string(next_exec_++);
  std::weak_ptr<Session> weak = weak_from_this();
  exec->channel = exec->link->open([weak, exec_id](const Frame* frame) {
    if (auto self = weak.lock()) self->on_exec_frame(exec_id, frame);
  });
  json request = {{"op", "exec"}, {"tty", p.tty}, {"stdin", p.stdin_open || p.stdin_data.has_value()}};
  if (p.command) {
    request["shell"] = *p.command;
  } else {
    request["argv"] = p.argv;
  }
  if (!p.env.empty()) request["env"] = p.env;
  if (!p.cwd.empty()) request["cwd"] = p.cwd;
  if (!p.user.empty()) request["user"] = p.user;
  if (p.tty) {
    request["rows"] = p.rows;
    request["cols"] = p.cols;
  }
  if (p.timeout_ms != 0) request["timeout_ms"] = p.timeout_ms;
  if (p.privileged) request["privileged"] = true;
  SupervisorLink& l = *exec->link;
  const std::uint32_t channel = exec->channel;
  l.send_control(channel, request);
  if (p.stdin_data) {
    l.send_data(FrameType::stdin_data, channel, *p.stdin_data);
    l.send(FrameType::stdin_data, channel, {});  // EOF
  }
  execs_[exec_id] = std::move(exec);
}

void Session::on_exec_frame(const std::string& exec_id, const Frame* frame) {
  auto it = execs_.find(exec_id);
  if (it == execs_.end()) return;
  Exec& e = *it->second;
  auto finish = [&] {
    e.link->close(e.channel);
    execs_.erase(it);
  };
  if (frame == nullptr) {  // the VM stopped under the command
    if (e.reply) {
      e.reply(ApiError{ErrorKind::vm_not_running, "the sandbox stopped while the command ran", "vm_stopped", nullptr, 0});
    } else if (hooks_.notify) {
      hooks_.notify("exec.exit", {{"exec_id", exec_id}, {"exit_code", -1}, {"signal", nullptr}, {"signal_name", nullptr},
                                  {"timed_out", false}, {"duration_ms", 0}, {"error", "the sandbox stopped"}});
    }
    execs_.erase(it);
    return;
  }
  if (frame->type == FrameType::stdout_data || frame->type == FrameType::stderr_data) {
    const bool out = frame->type == FrameType::stdout_data;
    if (e.buffered) {
      std::string& buffer = out ? e.out : e.err;
      bool& truncated = out ? e.out_truncated : e.err_truncated;
      const std::size_t room = kMaxBufferedOutput - std::min(buffer.size(), kMaxBufferedOutput);
      if (frame->payload.size() > room) truncated = true;
      buffer.append(frame->payload.data(), std::min(room, frame->payload.size()));
    } else if (hooks_.notify) {
      hooks_.notify(out ? "exec.stdout" : "exec.stderr", {{"exec_id", exec_id}, {"data", base64_encode(frame->payload)}});
      update_flow_control();
    }
    return;
  }
  if (frame->type != FrameType::control) return;
  const auto reply = protocol::parse_control(frame->payload);
  if (!reply) return;
  const std::string op = protocol::op_of(*reply);
  if (op == "started") {
    e.started = true;
    if (!e.buffered && e.reply) {
      Reply ack = std::move(e.reply);
      e.reply = nullptr;
      ack(json{{"exec_id", exec_id}});
    }
    return;
  }
  if (op == "error") {
    ApiError error = guest_error(*reply, "exec");
    if (e.reply) {
      e.reply(error);
    } else if (hooks_.notify) {
      hooks_.notify("exec.exit", {{"exec_id", exec_id}, {"exit_code", -1}, {"signal", nullptr}, {"signal_name", nullptr},
                                  {"timed_out", false}, {"duration_ms", 0}, {"error", error.message}});
    }
    return finish();
  }
  if (op != "exit") return;
  json result = exit_json(*reply);
  if (!e.buffered) {
    result["exec_id"] = exec_id;
    if (hooks_.notify) hooks_.notify("exec.exit", result);
    return finish();
  }
  result["stdout"] = base64_encode(e.out);
  result["stderr"] = base64_encode(e.err);
  if (e.out_truncated) result["stdout_truncated"] = true;
  if (e.err_truncated) result["stderr_truncated"] = true;
  Reply done = std::move(e.reply);
  if (result["timed_out"].get<bool>()) {
    done(ApiError{ErrorKind::timeout, "the command ran out of time (timeout_seconds) and was killed", "", result, 0});
  } else {
    done(result);
  }
  finish();
}

namespace {

ApiError no_exec(const std::string& exec_id) {
  return ApiError{ErrorKind::invalid_config, "no running exec \"" + exec_id.substr(0, 64) + "\" in this session",
                  "not_found", nullptr, 0};
}

}  // namespace

void Session::exec_stdin(const ExecStdinParams& p, Reply reply) {
  auto it = execs_.find(p.exec_id);
  if (it == execs_.end() || it->second->buffered) return reply(no_exec(p.exec_id));
  Exec& e = *it->second;
  if (!e.stdin_open) {
    return reply(ApiError{ErrorKind::invalid_config, "this exec's stdin is closed (start it with stdin: true)",
                          "invalid", nullptr, 0});
  }
  e.link->send_data(FrameType::stdin_data, e.channel, p.data);
  if (p.eof) {
    e.link->send(FrameType::stdin_data, e.channel, {});
    e.stdin_open = false;
  }
  reply(json::object());
}

void Session::exec_resize(const ExecResizeParams& p, Reply reply) {
  auto it = execs_.find(p.exec_id);
  if (it == execs_.end() || it->second->buffered) return reply(no_exec(p.exec_id));
  it->second->link->send_control(it->second->channel, {{"op", "resize"}, {"rows", p.rows}, {"cols", p.cols}});
  reply(json::object());
}

void Session::exec_signal(const ExecSignalParams& p, Reply reply) {
  auto it = execs_.find(p.exec_id);
  if (it == execs_.end()) return reply(no_exec(p.exec_id));
  it->second->link->send_control(it->second->channel, {{"op", "signal"}, {"signal", p.signal}});
  reply(json::object());
}

}  // namespace airlock::api
