// Parameter reading; see params.hpp.
#include "runtime/api/params.hpp"

#include <algorithm>
#include <cmath>

#include "common/edit_distance.hpp"
#include "runtime/api/base64.hpp"

namespace airlock::api {

ParamReader::ParamReader(const nlohmann::json& params, std::initializer_list<const char*> known) : params_(params) {
  if (!params.is_object()) {
    fail("params must be an object of named parameters");
    return;
  }
  for (const auto& item : params.items()) {
    const std::string& key = item.key();
    if (std::any_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) continue;
    std::string message = "unknown parameter \"" + key.substr(0, 64) + "\"";
    const char* best = nullptr;
    std::size_t best_distance = 4;
    const std::string given = key.substr(0, 64);
    for (const char* k : known) {
      const std::string candidate = k;
      // A typo, or a shortened name ("timeout" for "timeout_seconds").
      const std::size_t d = candidate.rfind(given, 0) == 0 && given.size() >= 3 ? 1 : edit_distance(given, candidate);
      if (d < best_distance) best = k, best_distance = d;
    }
    if (best != nullptr) message += std::string(" (did you mean \"") + best + "\"?)";
    fail(message);
    return;
  }
}

void ParamReader::fail(const std::string& message) {
  if (!error_) error_ = invalid_params(message);
}

const nlohmann::json* ParamReader::find(const char* key) const {
  if (error_ || !params_.is_object()) return nullptr;
  auto it = params_.find(key);
  return it == params_.end() || it->is_null() ? nullptr : &*it;
}

bool ParamReader::has(const char* key) const { return find(key) != nullptr; }

std::string ParamReader::required_string(const char* key) {
  if (error_) return {};
  const nlohmann::json* v = find(key);
  if (v == nullptr) {
    fail(std::string("missing parameter \"") + key + "\"");
    return {};
  }
  auto s = string(key);
  return s.value_or("");
}

std::optional<std::string> ParamReader::string(const char* key) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    fail(std::string("\"") + key + "\" must be a string");
    return std::nullopt;
  }
  return v->get<std::string>();
}

bool ParamReader::boolean(const char* key, bool fallback) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) {
    fail(std::string("\"") + key + "\" must be true or false");
    return fallback;
  }
  return v->get<bool>();
}

std::optional<std::int64_t> ParamReader::integer(const char* key, std::int64_t min, std::int64_t max) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return std::nullopt;
  std::optional<std::int64_t> value;
  if (v->is_number_unsigned()) {
    const auto u = v->get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(max)) value = static_cast<std::int64_t>(u);
  } else if (v->is_number_integer()) {
    value = v->get<std::int64_t>();
  } else if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && d >= static_cast<double>(min) && d <= static_cast<double>(max)) {
      value = static_cast<std::int64_t>(d);
    }
  }
  if (!value || *value < min || *value > max) {
    fail(std::string("\"") + key + "\" must be a whole number from " + std::to_string(min) + " to " +
         std::to_string(max));
    return std::nullopt;
  }
  return value;
}

std::optional<double> ParamReader::number(const char* key, double min, double max) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() < min || v->get<double>() > max) {
    fail(std::string("\"") + key + "\" must be a number from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return v->get<double>();
}

std::optional<std::vector<std::string>> ParamReader::string_list(const char* key) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_array() || !std::all_of(v->begin(), v->end(), [](const auto& e) { return e.is_string(); })) {
    fail(std::string("\"") + key + "\" must be a list of strings");
    return std::nullopt;
  }
  return v->get<std::vector<std::string>>();
}

std::optional<std::map<std::string, std::string>> ParamReader::string_map(const char* key) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) {
    fail(std::string("\"") + key + "\" must be an object of strings");
    return std::nullopt;
  }
  std::map<std::string, std::string> out;
  for (const auto& [k, value] : v->items()) {
    if (!value.is_string()) {
      fail(std::string("\"") + key + "." + k.substr(0, 64) + "\" must be a string");
      return std::nullopt;
    }
    out[k] = value.get<std::string>();
  }
  return out;
}

const nlohmann::json* ParamReader::object(const char* key) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) {
    fail(std::string("\"") + key + "\" must be an object");
    return nullptr;
  }
  return v;
}

std::string ParamReader::guest_path(const char* key) {
  std::string path = required_string(key);
  if (!ok()) return {};
  if (path.empty() || path.front() != '/' || path.size() >= 4096 || path.find('\0') != std::string::npos) {
    fail(std::string("\"") + key + "\" must be an absolute guest path");
    return {};
  }
  return path;
}

std::optional<std::string> ParamReader::bytes(const char* key) {
  auto text = string(key);
  if (!text) return std::nullopt;
  auto decoded = base64_decode(*text);
  if (!decoded) fail(std::string("\"") + key + "\" must be base64 (RFC 4648, padded)");
  return decoded;
}

}  // namespace airlock::api
