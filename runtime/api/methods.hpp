// Every API method's params, parsed and checked into a struct before anything acts on
// them (pure; the RPC fuzz target drives these directly). A method name the API does
// not have is method_not_found; params that don't fit are invalid_params, naming the
// parameter. Field names follow docs/api.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/api/api_error.hpp"

namespace airlock::api {

struct SandboxId {
  std::string id;
};

struct CreateParams {
  nlohmann::json config = nlohmann::json::object();  // the policy file's shape
  std::string policy_file;                          // loaded first; config merges over it
  std::string base_dir;                             // relative paths in config; "" = cwd
  std::string image;                                // overrides config.image
  std::map<std::string, nlohmann::json> secrets;    // merged into config.network.secrets
  bool network = true;
  std::string hostname;
  std::vector<std::string> add_hosts;               // "NAME:IP"
  bool auto_remove = false;                         // removed when this connection ends
};

struct StartParams {
  std::string id;
  std::map<std::string, std::string> secrets;       // values of secrets given as values at create
};

struct ExecParams {
  std::string id;
  std::vector<std::string> argv;                    // or
  std::optional<std::string> command;               // run by /bin/sh -c
  std::map<std::string, std::string> env;
  std::string cwd;
  std::string user;
  bool tty = false;
  std::uint16_t rows = 24, cols = 80;
  bool stdin_open = false;                          // exec.start: stdin: true
  std::optional<std::string> stdin_data;            // stdin: base64 bytes (then EOF)
  std::uint64_t timeout_ms = 0;
  bool privileged = false;
};

struct ExecStdinParams {
  std::string exec_id;
  std::string data;
  bool eof = false;
};

struct ExecResizeParams {
  std::string exec_id;
  std::uint16_t rows = 24, cols = 80;
};

struct ExecSignalParams {
  std::string exec_id;
  int signal = 15;
};

struct FileWriteParams {
  std::string id, path, data;
  std::uint32_t mode = 0644;
  bool parents = true;
};

struct FilePathParams {  // file.read, file.list, file.stat
  std::string id, path;
  bool follow = true;     // file.stat: false = lstat
};

struct FileMkdirParams {
  std::string id, path;
  std::uint32_t mode = 0755;
  bool parents = true;
};

struct FileRemoveParams {
  std::string id, path;
  bool recursive = false;
};

struct TransferParams {  // file.upload (src host, dst guest), file.download (src guest, dst host)
  std::string id, src, dst;
};

struct SubscribeParams {
  std::string id;
  std::uint64_t from_seq = 0;
  bool follow = true;
};

struct UnsubscribeParams {
  std::string subscription_id;
};

using MethodParams =
    std::variant<std::monostate, SandboxId, CreateParams, StartParams, ExecParams, ExecStdinParams, ExecResizeParams,
                 ExecSignalParams, FileWriteParams, FilePathParams, FileMkdirParams, FileRemoveParams, TransferParams,
                 SubscribeParams, UnsubscribeParams>;

// Every method name, in docs/api.md's order.
const std::vector<std::string>& method_names();

// The method's params, or the error to answer with.
std::variant<MethodParams, ApiError> parse_params(const std::string& method, const nlohmann::json& params);

// "SIGTERM", "TERM", "15" -> 15; 0 when not a signal (1..64).
int parse_signal(const nlohmann::json& value);

}  // namespace airlock::api
