// Never-throwing JSON helpers for control payloads (see messages.hpp).
#include "protocol/messages.hpp"

#include <cmath>
#include <limits>

namespace airlock::protocol {
namespace {

const Json* member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end()) return nullptr;
  return &*it;
}

}  // namespace

std::optional<Json> parse_control(std::string_view payload) {
  Json parsed = Json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  auto op = parsed.find("op");
  if (op == parsed.end() || !op->is_string()) return std::nullopt;
  return parsed;
}

std::string op_of(const Json& message) { return get_string(message, "op").value_or(""); }

std::optional<std::string> get_string(const Json& object, std::string_view key) {
  const Json* v = member(object, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return v->get_ref<const std::string&>();
}

std::optional<std::int64_t> get_int(const Json& object, std::string_view key) {
  const Json* v = member(object, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned()) {
      const auto u = v->get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
      return static_cast<std::int64_t>(u);
    }
    return v->get<std::int64_t>();
  }
  if (v->is_number_float()) {
    // Some encoders write 24.0 for 24; accept whole numbers in range, nothing else.
    const double d = v->get<double>();
    if (!std::isfinite(d) || std::trunc(d) != d || d < -9.0e18 || d > 9.0e18) return std::nullopt;
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::optional<bool> get_bool(const Json& object, std::string_view key) {
  const Json* v = member(object, key);
  if (v == nullptr || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

std::optional<std::vector<std::string>> get_string_array(const Json& object, std::string_view key) {
  const Json* v = member(object, key);
  if (v == nullptr || !v->is_array()) return std::nullopt;
  std::vector<std::string> out;
  out.reserve(v->size());
  for (const auto& element : *v) {
    if (!element.is_string()) return std::nullopt;
    out.push_back(element.get_ref<const std::string&>());
  }
  return out;
}

const Json* get_object(const Json& object, std::string_view key) {
  const Json* v = member(object, key);
  return (v != nullptr && v->is_object()) ? v : nullptr;
}

std::string dump(const Json& message) {
  return message.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string make_error(std::string_view code, std::string_view message) {
  return dump(Json{{"op", "error"}, {"code", code}, {"message", message}});
}

std::string make_ok() { return dump(Json{{"op", "ok"}}); }

}  // namespace airlock::protocol
