// Exec routing rules; see exec_service.hpp.
#include "runtime/vm/exec_service.hpp"

#include <algorithm>
#include <cstdint>

#include "protocol/messages.hpp"

namespace airlock::runtime {

namespace {

bool shell_safe(const std::string& word) {
  if (word.empty()) return false;
  return std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("-_./=:,+@%").find(c) != std::string_view::npos;
  });
}

}  // namespace

std::string ExecService::shell_join(const nlohmann::json& request) {
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

std::string ExecService::guest_payload(const nlohmann::json& request, const std::string& payload) const {
  if (base_env_.empty()) return payload;
  nlohmann::json merged = request;
  nlohmann::json env = nlohmann::json::object();
  for (const auto& [k, v] : base_env_) env[k] = v;
  if (auto given = request.find("env"); given != request.end() && given->is_object()) {
    env.update(*given, /*merge_objects=*/false);
  } else if (given != request.end() && !given->is_null()) {
    return payload;  // malformed: let the guest refuse it as sent
  }
  merged["env"] = std::move(env);
  return protocol::dump(merged);
}

ExecService::Running ExecService::begin(const nlohmann::json& request, std::int64_t now_ms) {
  return Running{shell_join(request), now_ms};
}

std::optional<nlohmann::json> ExecService::on_reply(const Running& exec, const std::string& op,
                                                    const nlohmann::json& reply, std::int64_t now_ms) {
  if (op != "exit" && op != "error") return std::nullopt;
  std::int64_t exit_code = -1;
  std::int64_t duration = now_ms - exec.started_ms;
  if (op == "exit") {
    if (auto c = reply.find("exit_code"); c != reply.end() && c->is_number_integer()) {
      exit_code = c->get<std::int64_t>();
    }
    if (auto d = protocol::get_int(reply, "duration_ms"); d && *d >= 0) duration = *d;
  }
  nlohmann::json event = {{"command", exec.command},
                          {"exit_code", exit_code},
                          {"duration_ms", std::max<std::int64_t>(0, duration)}};
  if (op == "error") {
    auto code = reply.find("code");
    event["error"] = code != reply.end() && code->is_string() ? code->get<std::string>().substr(0, 64) : "io";
  }
  return nlohmann::json{{"type", "exec"}, {"exec", std::move(event)}};
}

bool ExecService::is_in_flight_op(const std::string& op) {
  return op == "signal" || op == "resize" || op == "cancel";
}

}  // namespace airlock::runtime
