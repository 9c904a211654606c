// Session internals shared by its method files (session*.cpp): the per-exec and
// per-subscription state, and the shapes of results built from guest replies.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "runtime/api/session.hpp"

namespace airlock::api {

struct Session::Exec {
  std::string sandbox;
  std::shared_ptr<SupervisorLink> link;
  std::uint32_t channel = 0;
  bool buffered = false;    // exec.run: output collected, one reply at the end
  bool started = false;
  bool stdin_open = false;
  Reply reply;              // pending: exec.start's ack, or exec.run's result
  std::string out, err;     // exec.run only
  bool out_truncated = false, err_truncated = false;
};

struct Session::Subscription {
  std::shared_ptr<SupervisorLink> link;  // a connection of its own: closing it ends the follow
  std::uint32_t channel = 0;
};

// {name, size, mode, mod_time, is_dir, type} from a guest stat/list entry, typed.
nlohmann::json stat_result(const nlohmann::json& guest);

}  // namespace airlock::api
