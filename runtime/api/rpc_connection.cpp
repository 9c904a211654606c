// JSON-RPC over a transport; see rpc_connection.hpp.
#include "runtime/api/rpc_connection.hpp"

namespace airlock::api {

using nlohmann::json;

RpcConnection::RpcConnection(std::shared_ptr<Transport> transport, Dispatch dispatch)
    : transport_(std::move(transport)), dispatch_(std::move(dispatch)) {}

void RpcConnection::start() {
  std::weak_ptr<RpcConnection> weak = shared_from_this();
  transport_->on_line = [weak](std::optional<std::string> line) {
    if (auto self = weak.lock()) self->on_line(std::move(line));
  };
  transport_->on_closed = [weak] {
    if (auto self = weak.lock()) {
      if (self->on_closed) self->on_closed();
    }
  };
  transport_->on_drained = [weak] {
    if (auto self = weak.lock()) {
      self->update_reading();
      if (self->on_drained) self->on_drained();
    }
  };
  transport_->start();
}

void RpcConnection::send(const json& message) {
  transport_->send(to_line(message));
  update_reading();
}

void RpcConnection::notify(const std::string& method, json params) { send(notification(method, std::move(params))); }

void RpcConnection::update_reading() {
  const bool keep = transport_->backlog() <= kHighWater &&
                    (!downstream_backlog || downstream_backlog() <= kHighWater);
  if (keep == reading_) return;
  reading_ = keep;
  transport_->set_reading(keep);
}

namespace {

json response_for(const json& id, ApiResult result) {
  if (auto* ok = std::get_if<json>(&result)) return result_response(id, std::move(*ok));
  const ApiError& e = std::get<ApiError>(result);
  return error_response(id, rpc_code_of(e), e.message, error_data(e));
}

// A batch's responses, sent as one array when the last of its requests is answered.
struct Batch {
  json responses = json::array();
  std::size_t pending = 0;
};

}  // namespace

void RpcConnection::on_line(std::optional<std::string> line) {
  handle_line(std::move(line));
  update_reading();  // what the request queued further on may be a reason to pause
}

void RpcConnection::handle_line(std::optional<std::string> line) {
  if (!line) {
    send(error_response(nullptr, kInvalidRequest,
                        "message larger than " + std::to_string(kMaxMessageBytes >> 20) +
                            " MiB (move big files with file.upload / file.download)",
                        json{{"kind", "invalid_config"}, {"code", "too_large"}}));
    return;
  }
  ParsedMessage message = parse_message(*line);
  std::weak_ptr<RpcConnection> weak = shared_from_this();
  if (!message.batch) {
    Parsed& p = message.items.front();
    if (p.error) return send(*p.error);
    if (!p.call) return;
    const bool is_request = p.call->id.has_value();
    const json id = is_request ? *p.call->id : json(nullptr);
    dispatch_(*p.call, [weak, is_request, id](ApiResult result) {
      auto self = weak.lock();
      if (!self || !is_request) return;
      self->send(response_for(id, std::move(result)));
    });
    return;
  }
  auto batch = std::make_shared<Batch>();
  for (Parsed& p : message.items) {
    if (p.error) batch->responses.push_back(std::move(*p.error));
    if (p.call && p.call->id) ++batch->pending;
  }
  auto finish_if_done = [weak, batch] {
    if (batch->pending != 0 || batch->responses.empty()) return;
    if (auto self = weak.lock()) self->send(batch->responses);
  };
  if (batch->pending == 0) {
    finish_if_done();
  }
  for (Parsed& p : message.items) {
    if (!p.call) continue;
    const bool is_request = p.call->id.has_value();
    const json id = is_request ? *p.call->id : json(nullptr);
    dispatch_(*p.call, [batch, is_request, id, finish_if_done](ApiResult result) {
      if (!is_request) return;
      batch->responses.push_back(response_for(id, std::move(result)));
      --batch->pending;
      finish_if_done();
    });
  }
}

}  // namespace airlock::api
