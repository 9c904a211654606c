// Reading a method's params field by field, without exceptions: the first problem is
// recorded (with the parameter's name) and later reads return nothing, so a method
// parses all its params and then checks ok() once. Unknown parameter names are refused
// too (with a suggestion), so a typo such as "timeout" for "timeout_seconds" is an error
// instead of a silently ignored setting. Pure.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/api/api_error.hpp"

namespace airlock::api {

class ParamReader {
 public:
  // known: every parameter the method takes.
  ParamReader(const nlohmann::json& params, std::initializer_list<const char*> known);

  bool ok() const { return !error_; }
  const ApiError& error() const { return *error_; }
  void fail(const std::string& message);

  bool has(const char* key) const;
  std::string required_string(const char* key);
  std::optional<std::string> string(const char* key);
  bool boolean(const char* key, bool fallback);
  std::optional<std::int64_t> integer(const char* key, std::int64_t min, std::int64_t max);
  std::optional<double> number(const char* key, double min, double max);
  std::optional<std::vector<std::string>> string_list(const char* key);
  std::optional<std::map<std::string, std::string>> string_map(const char* key);
  // An object parameter (nullptr when absent or on error).
  const nlohmann::json* object(const char* key);
  // An absolute guest path: no NUL, under 4096 bytes.
  std::string guest_path(const char* key);
  // Base64 bytes.
  std::optional<std::string> bytes(const char* key);

 private:
  const nlohmann::json* find(const char* key) const;
  const nlohmann::json& params_;
  std::optional<ApiError> error_;
};

}  // namespace airlock::api
