// One API client's session: the methods of docs/api.md, run for one connection (an
// `airlock rpc` pipe, one client of `airlock serve`, or the MCP server).
//
// Theory of operation: call() parses the params (methods.hpp) and runs the method. Quick
// work happens on the loop; whatever blocks (create, start, stop, remove, uploads) runs
// as a job (job_runner.hpp). Execs, file operations and event streams go to the VM's
// supervisor over a SupervisorLink, one per sandbox this session uses, opened on first
// use. Output reaches the client as notifications (exec.stdout, exec.exit, event, ...)
// through notify; while the client's backlog is above kHighWater the session stops
// reading its links, which pushes back on the guest. Every reply is sent exactly once.
//
// The session owns its execs and subscriptions: close() cancels them and removes the
// sandboxes created with auto_remove, then reports done. Nothing here throws into the
// loop: bad params, unknown ids and guest refusals all become ApiErrors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "runtime/api/api_error.hpp"
#include "runtime/api/job_runner.hpp"
#include "runtime/api/methods.hpp"
#include "runtime/api/supervisor_link.hpp"

namespace airlock::api {

using Reply = std::function<void(ApiResult)>;

struct SessionIo {
  std::function<void(const std::string& method, nlohmann::json params)> notify;
  std::function<std::size_t()> backlog;  // bytes the client has not read yet
  std::function<void()> downstream_drained;  // the supervisors took some of what we queued
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  static constexpr std::size_t kHighWater = 8u << 20;
  static constexpr std::size_t kMaxBufferedOutput = 128u << 20;  // exec.run, per stream
  static constexpr std::size_t kMaxReadBytes = 160u << 20;       // file.read (base64 grows it 4/3)

  Session(boost::asio::io_context& io, std::filesystem::path home, JobRunner& jobs, SessionIo io_hooks);
  ~Session();

  void call(const std::string& method, const nlohmann::json& params, Reply reply);
  // The client read some of its backlog: links paused for it may go on.
  void on_drained();
  // Bytes queued to supervisors (stdin, file data) not yet written: while it is high the
  // transport reads no more requests, so a client streaming input is paced by the guest.
  std::size_t downstream_backlog() const;
  void close(std::function<void()> done);

 private:
  struct Exec;
  struct Subscription;

  // sandbox.*, policy.* (session_sandbox.cpp)
  void sandbox_create(CreateParams p, Reply reply);
  void sandbox_list(Reply reply);
  void sandbox_get(const std::string& id, Reply reply);
  void sandbox_stop(const std::string& id, Reply reply);
  void sandbox_start(StartParams p, Reply reply);
  void sandbox_remove(const std::string& id, Reply reply);
  void policy_get(const std::string& id, Reply reply);
  // exec.* (session_exec.cpp)
  void exec_start(ExecParams p, bool buffered, Reply reply);
  void exec_stdin(const ExecStdinParams& p, Reply reply);
  void exec_resize(const ExecResizeParams& p, Reply reply);
  void exec_signal(const ExecSignalParams& p, Reply reply);
  void on_exec_frame(const std::string& exec_id, const protocol::Frame* frame);
  // file.* (session_files.cpp)
  void file_write(FileWriteParams p, Reply reply);
  void file_read(const FilePathParams& p, Reply reply);
  void file_list(const FilePathParams& p, Reply reply);
  void file_one_reply(const std::string& id, nlohmann::json request, std::function<nlohmann::json(const nlohmann::json&)> shape,
                      Reply reply);
  void file_transfer(const TransferParams& p, bool upload, Reply reply);
  // events.* (session_events.cpp)
  void events_subscribe(const SubscribeParams& p, Reply reply);
  void events_unsubscribe(const std::string& subscription_id, Reply reply);
  void end_subscription(const std::string& subscription_id, const std::string& reason);

  // The live link to a sandbox's supervisor, connecting on first use; or why not
  // (vm_not_found, vm_not_running).
  std::variant<std::shared_ptr<SupervisorLink>, ApiError> link_for(const std::string& id);
  std::variant<std::string, ApiError> running_sandbox(const std::string& wanted, std::filesystem::path& api_sock);
  void update_flow_control();
  void drop_links(const std::string& sandbox_id);

  boost::asio::io_context& io_;
  std::filesystem::path home_;
  JobRunner& jobs_;
  SessionIo hooks_;
  std::map<std::string, std::shared_ptr<SupervisorLink>> links_;
  std::map<std::string, std::unique_ptr<Exec>> execs_;
  std::map<std::string, std::unique_ptr<Subscription>> subscriptions_;
  std::set<std::string> auto_remove_;
  std::uint64_t next_exec_ = 1;
  std::uint64_t next_subscription_ = 1;
  bool paused_ = false;
  bool closing_ = false;
};

}  // namespace airlock::api
