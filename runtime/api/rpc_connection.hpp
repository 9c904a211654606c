// JSON-RPC 2.0 over one transport: lines in, calls dispatched, responses and
// notifications out.
//
// Each line is parsed (jsonrpc.hpp); every request gets exactly one response, in
// whatever order its method finishes (ids tell them apart); a batch's responses go back
// together as one array once all of its requests are done. Notifications get nothing.
// An oversized line gets one error (id null) and the connection goes on. While the
// client isn't reading (its backlog above kHighWater), no further requests are read.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/api/api_error.hpp"
#include "runtime/api/jsonrpc.hpp"
#include "runtime/api/line_transport.hpp"

namespace airlock::api {

class RpcConnection : public std::enable_shared_from_this<RpcConnection> {
 public:
  static constexpr std::size_t kHighWater = 16u << 20;
  using Dispatch = std::function<void(const Call& call, std::function<void(ApiResult)> reply)>;

  RpcConnection(std::shared_ptr<Transport> transport, Dispatch dispatch);

  void start();
  void notify(const std::string& method, nlohmann::json params);
  std::size_t backlog() const { return transport_->backlog(); }
  void close() { transport_->close(); }

  std::function<void()> on_closed;   // the client is gone
  std::function<void()> on_drained;  // the client read some output
  // Bytes this connection's requests queued further on (to supervisors); above
  // kHighWater no more requests are read. Call recheck() when it goes down.
  std::function<std::size_t()> downstream_backlog;
  void recheck() { update_reading(); }

 private:
  void on_line(std::optional<std::string> line);
  void handle_line(std::optional<std::string> line);
  void send(const nlohmann::json& message);
  void update_reading();

  std::shared_ptr<Transport> transport_;
  Dispatch dispatch_;
  bool reading_ = true;
};

}  // namespace airlock::api
