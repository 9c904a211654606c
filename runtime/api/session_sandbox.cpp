// sandbox.* and policy.get: lifecycle operations, run as jobs (they block); see session.hpp.
#include <unistd.h>

#include "runtime/api/sandbox_config.hpp"
#include "runtime/api/session_state.hpp"
#include "runtime/vm/client.hpp"
#include "runtime/vm/launch_spec.hpp"
#include "runtime/vm/sandboxes.hpp"

namespace airlock::api {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json sandbox_json(const runtime::SandboxInfo& info) {
  json out = {{"id", info.id}, {"status", info.status}};
  if (info.status == "unknown") {
    out["error"] = info.error;
    return out;
  }
  const runtime::VmState& s = info.state;
  out["image"] = s.image;
  out["created"] = s.created;
  out["accel"] = s.accel;
  out["config"] = s.config;
  if (s.boot_ms) out["boot_ms"] = *s.boot_ms;
  if (!s.error.empty()) out["error"] = s.error;
  return out;
}

fs::path current_dir() {
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  return ec ? fs::path("/") : cwd;
}

}  // namespace

void Session::sandbox_create(CreateParams p, Reply reply) {
  const fs::path home = home_;
  const bool auto_remove = p.auto_remove;
  std::weak_ptr<Session> weak = weak_from_this();
  jobs_.run(
      [home, p = std::move(p)]() -> ApiResult {
        const policy::Policy policy = build_sandbox_policy(p, current_dir());
        runtime::CreateOptions options;
        options.network = p.network;
        if (!p.hostname.empty()) options.hostname = runtime::check_hostname(p.hostname);
        for (const auto& h : p.add_hosts) options.add_hosts.push_back(runtime::parse_add_host(h));
        options.progress = [](std::string_view line) { std::fprintf(stderr, "image: %.*s\n", static_cast<int>(line.size()), line.data()); };
        const runtime::LaunchResult launched = runtime::create_sandbox(home, policy, options);
        return json{{"id", launched.id}, {"boot_ms", launched.boot_ms}};
      },
      [weak, auto_remove, home, jobs = &jobs_, reply = std::move(reply)](ApiResult result) {
        auto self = weak.lock();
        if (auto* ok = std::get_if<json>(&result); ok && auto_remove) {
          const std::string id = (*ok)["id"].get<std::string>();
          if (!self || self->closing_) {
            // The client went away while its sandbox booted: nobody will ever use it.
            jobs->run([home, id]() -> ApiResult {
              runtime::remove_sandbox(home, id);
              return json::object();
            }, [](ApiResult) {});
            return;
          }
          self->auto_remove_.insert(id);
        }
        reply(std::move(result));
      });
}

void Session::sandbox_list(Reply reply) {
  const fs::path home = home_;
  jobs_.run(
      [home]() -> ApiResult {
        json rows = json::array();
        for (const auto& info : runtime::list_sandboxes(home)) rows.push_back(sandbox_json(info));
        return rows;
      },
      std::move(reply));
}

void Session::sandbox_get(const std::string& wanted, Reply reply) {
  const fs::path home = home_;
  jobs_.run(
      [home, wanted]() -> ApiResult {
        const std::string id = runtime::resolve_sandbox_id(home, wanted);
        runtime::SandboxInfo info = runtime::inspect_sandbox(home, id);
        json out = sandbox_json(info);
        if (info.alive) {
          // The supervisor's own view, QEMU's status included (QMP runs off its loop).
          if (auto client = runtime::ApiClient::connect(info.paths.api_sock)) {
            if (auto status = client->call({{"op", "status"}}, std::chrono::seconds(3))) {
              if (auto q = status->find("qemu_status"); q != status->end() && q->is_string()) out["qemu_status"] = *q;
              if (auto st = status->find("status"); st != status->end() && st->is_string()) out["status"] = *st;
            }
          }
        }
        return out;
      },
      std::move(reply));
}

void Session::sandbox_stop(const std::string& wanted, Reply reply) {
  const fs::path home = home_;
  std::weak_ptr<Session> weak = weak_from_this();
  jobs_.run(
      [home, wanted]() -> ApiResult {
        const std::string id = runtime::resolve_sandbox_id(home, wanted);
        runtime::stop_sandbox(home, id);
        return json{{"id", id}};
      },
      [weak, reply = std::move(reply)](ApiResult result) {
        if (auto self = weak.lock(); self && std::holds_alternative<json>(result)) {
          self->drop_links(std::get<json>(result)["id"].get<std::string>());
        }
        reply(std::move(result));
      });
}

void Session::sandbox_start(StartParams p, Reply reply) {
  const fs::path home = home_;
  jobs_.run(
      [home, p = std::move(p)]() -> ApiResult {
        const std::string id = runtime::resolve_sandbox_id(home, p.id);
        const runtime::LaunchResult started = runtime::start_sandbox(home, id, p.secrets, policy::process_env());
        return json{{"id", started.id}, {"boot_ms", started.boot_ms}};
      },
      std::move(reply));
}

void Session::sandbox_remove(const std::string& wanted, Reply reply) {
  const fs::path home = home_;
  std::weak_ptr<Session> weak = weak_from_this();
  jobs_.run(
      [home, wanted]() -> ApiResult {
        const std::string id = runtime::resolve_sandbox_id(home, wanted);
        runtime::remove_sandbox(home, id);
        return json{{"id", id}};
      },
      [weak, reply = std::move(reply)](ApiResult result) {
        if (auto self = weak.lock(); self && std::holds_alternative<json>(result)) {
          const std::string id = std::get<json>(result)["id"].get<std::string>();
          self->auto_remove_.erase(id);
          self->drop_links(id);
        }
        reply(std::move(result));
      });
}

void Session::policy_get(const std::string& wanted, Reply reply) {
  const fs::path home = home_;
  jobs_.run(
      [home, wanted]() -> ApiResult {
        const std::string id = runtime::resolve_sandbox_id(home, wanted);
        auto kept = runtime::kept_config(home, id);
        if (!kept || !kept->contains("policy") || !(*kept)["policy"].is_object()) {
          return ApiError{ErrorKind::internal, "sandbox " + id + " has no readable launch.json", "", nullptr, 0};
        }
        json policy = (*kept)["policy"];
        // The kept config has no secret values; env values are shown redacted too.
        if (policy.contains("env") && policy["env"].is_object()) {
          for (auto& [k, v] : policy["env"].items()) v = "[REDACTED]";
        }
        if (policy.contains("network") && policy["network"].is_object() && policy["network"].contains("secrets")) {
          const json* sources = kept->contains("secret_env") ? &(*kept)["secret_env"] : nullptr;
          for (auto& [name, s] : policy["network"]["secrets"].items()) {
            s["value"] = "[REDACTED]";
            if (sources != nullptr && sources->contains(name)) s["value_from_env"] = (*sources)[name];
          }
        }
        return json{{"id", id}, {"policy", policy}};
      },
      std::move(reply));
}

}  // namespace airlock::api
