// File routing rules; see file_service.hpp.
#include "runtime/vm/file_service.hpp"

namespace airlock::runtime {

using protocol::FrameType;

std::optional<FileRoute> FileService::route_for(const std::string& op) {
  if (op == "file.read") return FileRoute::read;
  if (op == "file.write") return FileRoute::write;
  if (op == "file.upload") return FileRoute::upload;
  if (op == "file.download") return FileRoute::download;
  if (op == "file.list" || op == "file.stat" || op == "file.mkdir" || op == "file.remove") {
    return FileRoute::one_reply;
  }
  return std::nullopt;
}

bool FileService::client_may_send(FileRoute kind, const protocol::Frame& frame, const std::string& op) {
  if (frame.type == FrameType::file_data) return kind == FileRoute::write || kind == FileRoute::upload;
  if (frame.type == FrameType::control) return kind == FileRoute::upload && (op == "entry" || op == "end");
  return false;
}

FileService::GuestVerdict FileService::on_guest_frame(FileRouteState& state, const protocol::Frame& frame,
                                                      const std::string& control_op) {
  GuestVerdict v;
  if (frame.type == FrameType::control) {
    if (control_op.empty()) return v;
    v.forward = true;
    switch (state.kind) {
      case FileRoute::read:
        if (control_op == "ok") state.header_seen = true;
        v.done = control_op == "error";
        break;
      case FileRoute::download:
        v.done = control_op == "end" || control_op == "error";
        v.forward = v.done || control_op == "entry";
        break;
      default:
        v.done = control_op == "ok" || control_op == "error";
        break;
    }
    return v;
  }
  if (frame.type != FrameType::file_data) return v;
  if (state.kind == FileRoute::read && state.header_seen) {
    v.forward = true;
    v.done = frame.payload.empty();
  } else if (state.kind == FileRoute::download) {
    v.forward = true;  // each file's data ends with an empty frame; the route with "end"
  }
  return v;
}

}  // namespace airlock::runtime
