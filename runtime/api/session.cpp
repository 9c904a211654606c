// Session: dispatch, links, flow control, close; see session.hpp. The methods live in
// session_sandbox.cpp, session_exec.cpp, session_files.cpp and session_events.cpp.
// GCC 12 reports a "potential null dereference" inside Asio's scheduler once it is
// inlined; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "runtime/api/session.hpp"

#include <boost/asio/post.hpp>

#include "runtime/api/session_state.hpp"
#include "runtime/vm/sandboxes.hpp"

namespace airlock::api {

Session::Session(boost::asio::io_context& io, std::filesystem::path home, JobRunner& jobs, SessionIo io_hooks)
    : io_(io), home_(std::move(home)), jobs_(jobs), hooks_(std::move(io_hooks)) {}

Session::~Session() {
  for (auto& [id, link] : links_) link->shut_down();
  for (auto& [id, sub] : subscriptions_) sub->link->shut_down();
}

void Session::call(const std::string& method, const nlohmann::json& params, Reply reply) {
  if (closing_) {
    reply(ApiError{ErrorKind::internal, "the session is closing", "", nullptr, 0});
    return;
  }
  auto parsed = parse_params(method, params);
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    reply(*error);
    return;
  }
  MethodParams& p = std::get<MethodParams>(parsed);
  if (method == "sandbox.create") return sandbox_create(std::get<CreateParams>(p), std::move(reply));
  if (method == "sandbox.list") return sandbox_list(std::move(reply));
  if (method == "sandbox.get") return sandbox_get(std::get<SandboxId>(p).id, std::move(reply));
  if (method == "sandbox.stop") return sandbox_stop(std::get<SandboxId>(p).id, std::move(reply));
  if (method == "sandbox.start") return sandbox_start(std::get<StartParams>(p), std::move(reply));
  if (method == "sandbox.remove") return sandbox_remove(std::get<SandboxId>(p).id, std::move(reply));
  if (method == "policy.get") return policy_get(std::get<SandboxId>(p).id, std::move(reply));
  if (method == "policy.update") {
    reply(ApiError{ErrorKind::internal,
                   "policy.update is not supported yet: a sandbox's policy is fixed when it is created "
                   "(create a new sandbox with the new policy)",
                   "not_supported", nullptr, 0});
    return;
  }
  if (method == "exec.start") return exec_start(std::get<ExecParams>(p), false, std::move(reply));
  if (method == "exec.run") return exec_start(std::get<ExecParams>(p), true, std::move(reply));
  if (method == "exec.stdin") return exec_stdin(std::get<ExecStdinParams>(p), std::move(reply));
  if (method == "exec.resize") return exec_resize(std::get<ExecResizeParams>(p), std::move(reply));
  if (method == "exec.signal") return exec_signal(std::get<ExecSignalParams>(p), std::move(reply));
  if (method == "file.write") return file_write(std::get<FileWriteParams>(p), std::move(reply));
  if (method == "file.read") return file_read(std::get<FilePathParams>(p), std::move(reply));
  if (method == "file.list") return file_list(std::get<FilePathParams>(p), std::move(reply));
  if (method == "file.stat") {
    const auto& f = std::get<FilePathParams>(p);
    return file_one_reply(f.id, {{"op", "file.stat"}, {"path", f.path}, {"nofollow", !f.follow}},
                          [](const nlohmann::json& ok) { return stat_result(ok); }, std::move(reply));
  }
  if (method == "file.mkdir") {
    const auto& f = std::get<FileMkdirParams>(p);
    return file_one_reply(f.id, {{"op", "file.mkdir"}, {"path", f.path}, {"mode", f.mode}, {"parents", f.parents}},
                          [](const nlohmann::json&) { return nlohmann::json::object(); }, std::move(reply));
  }
  if (method == "file.remove") {
    const auto& f = std::get<FileRemoveParams>(p);
    return file_one_reply(f.id, {{"op", "file.remove"}, {"path", f.path}, {"recursive", f.recursive}},
                          [](const nlohmann::json&) { return nlohmann::json::object(); }, std::move(reply));
  }
  if (method == "file.upload") return file_transfer(std::get<TransferParams>(p), true, std::move(reply));
  if (method == "file.download") return file_transfer(std::get<TransferParams>(p), false, std::move(reply));
  if (method == "events.subscribe") return events_subscribe(std::get<SubscribeParams>(p), std::move(reply));
  if (method == "events.unsubscribe") {
    return events_unsubscribe(std::get<UnsubscribeParams>(p).subscription_id, std::move(reply));
  }
  reply(ApiError{ErrorKind::internal, "method " + method + " has no implementation", "", nullptr, 0});
}

std::variant<std::string, ApiError> Session::running_sandbox(const std::string& wanted, std::filesystem::path& api_sock) {
  std::string id;
  try {
    id = runtime::resolve_sandbox_id(home_, wanted);
  } catch (const std::exception& e) {
    return error_from_exception(e);
  }
  runtime::SandboxInfo info = runtime::inspect_sandbox(home_, id);
  if (!info.alive || info.status != "running") {
    return ApiError{ErrorKind::vm_not_running,
                    "sandbox " + id + " is " + info.status + (info.status == "stopped" ? " (sandbox.start boots it again)" : ""),
                    "", nullptr, 0};
  }
  api_sock = info.paths.api_sock;
  return id;
}

std::variant<std::shared_ptr<SupervisorLink>, ApiError> Session::link_for(const std::string& wanted) {
  if (auto it = links_.find(wanted); it != links_.end() && it->second->alive()) return it->second;
  std::filesystem::path api_sock;
  auto id = running_sandbox(wanted, api_sock);
  if (auto* e = std::get_if<ApiError>(&id)) return *e;
  const std::string& sandbox = std::get<std::string>(id);
  if (auto it = links_.find(sandbox); it != links_.end() && it->second->alive()) return it->second;
  auto link = SupervisorLink::connect(io_, api_sock);
  if (!link) return ApiError{ErrorKind::vm_not_running, "sandbox " + sandbox + ": " + link.error(), "", nullptr, 0};
  std::weak_ptr<Session> weak = weak_from_this();
  (*link)->on_drained = [weak] {
    auto self = weak.lock();
    if (self && self->hooks_.downstream_drained) self->hooks_.downstream_drained();
  };
  links_[sandbox] = *link;
  if (wanted != sandbox) links_[wanted] = *link;
  if (paused_) (*link)->set_reading(false);
  return *link;
}

void Session::drop_links(const std::string& sandbox_id) {
  for (auto it = links_.begin(); it != links_.end();) {
    if (it->first == sandbox_id || !it->second->alive()) {
      it = links_.erase(it);
    } else {
      ++it;
    }
  }
}

void Session::update_flow_control() {
  const bool behind = hooks_.backlog && hooks_.backlog() > kHighWater;
  if (behind == paused_) return;
  paused_ = behind;
  for (auto& [id, link] : links_) link->set_reading(!behind);
  for (auto& [id, sub] : subscriptions_) sub->link->set_reading(!behind);
}

void Session::on_drained() { update_flow_control(); }

std::size_t Session::downstream_backlog() const {
  std::size_t most = 0;
  for (const auto& [id, link] : links_) most = std::max(most, link->backlog());
  return most;
}

void Session::close(std::function<void()> done) {
  if (closing_) return;
  closing_ = true;
  // Running execs die with the connection (the supervisor cancels them in the guest).
  for (auto& [id, exec] : execs_) exec->link->close(exec->channel);
  execs_.clear();
  for (auto& [id, sub] : subscriptions_) sub->link->shut_down();
  subscriptions_.clear();
  for (auto& [id, link] : links_) link->shut_down();
  links_.clear();
  if (auto_remove_.empty()) {
    done();
    return;
  }
  const std::filesystem::path home = home_;
  const std::set<std::string> ids = auto_remove_;
  auto_remove_.clear();
  jobs_.run(
      [home, ids]() -> ApiResult {
        for (const auto& id : ids) {
          try {
            runtime::remove_sandbox(home, id);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "airlock: removing %s: %s\n", id.c_str(), e.what());
          }
        }
        return nlohmann::json::object();
      },
      [done = std::move(done)](ApiResult) { done(); });
}

}  // namespace airlock::api
