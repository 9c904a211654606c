// The file half of the router's rules (sans-IO, pure): which file requests exist, which
// frames may follow each on its channel in either direction, and which reply ends it.
//
//   file.write     client: file_data..., empty file_data    guest: ok | error
//   file.read      guest: ok, file_data..., empty file_data  (or error)
//   file.upload    client: entry / end controls, file_data  guest: ok | error
//   file.download  guest: entry controls, file_data..., end  (or error)
//   file.list, file.stat, file.mkdir, file.remove           guest: ok | error
//
// Anything else on a file request's channel is dropped (and counted by the router).
#pragma once

#include <optional>
#include <string>

#include "protocol/frame.hpp"

namespace airlock::runtime {

enum class FileRoute { read, write, upload, download, one_reply };

struct FileRouteState {
  FileRoute kind = FileRoute::one_reply;
  bool header_seen = false;  // file.read: the ok before the data
};

class FileService {
 public:
  static std::optional<FileRoute> route_for(const std::string& op);
  // A frame from the client on the channel of a file request in flight.
  static bool client_may_send(FileRoute kind, const protocol::Frame& frame, const std::string& op);
  // A frame from the guest: whether it goes to the client, and whether the route ends.
  struct GuestVerdict {
    bool forward = false;
    bool done = false;
  };
  static GuestVerdict on_guest_frame(FileRouteState& state, const protocol::Frame& frame,
                                     const std::string& control_op);
};

}  // namespace airlock::runtime
