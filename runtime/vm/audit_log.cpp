// events.jsonl writer; see audit_log.hpp.
#include "runtime/vm/audit_log.hpp"

#include <fstream>
#include <sstream>

namespace airlock::runtime {

std::string make_audit_line(std::uint64_t seq, std::int64_t timestamp_ms, const std::string& vm_id,
                            const nlohmann::json& body) {
  nlohmann::ordered_json line;
  line["seq"] = seq;
  line["type"] = body.value("type", "lifecycle");
  line["timestamp"] = timestamp_ms;
  line["vm_id"] = vm_id;
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "type" && it.key() != "seq" && it.key() != "timestamp" && it.key() != "vm_id") {
      line[it.key()] = it.value();
    }
  }
  // Replacement of invalid UTF-8 (a guest file name) keeps the line valid JSON.
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::uint64_t last_audit_seq(std::string_view text) {
  std::uint64_t last = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const auto j = nlohmann::json::parse(text.substr(start, end - start), nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      auto seq = j.find("seq");
      if (seq != j.end() && seq->is_number_unsigned()) last = std::max(last, seq->get<std::uint64_t>());
    }
    start = end + 1;
  }
  return last;
}

AuditLog::~AuditLog() {
  if (file_ != nullptr) std::fclose(file_);
}

bool AuditLog::open(const std::filesystem::path& file, std::string vm_id) {
  if (file_ != nullptr) std::fclose(file_);
  path_ = file;
  vm_id_ = std::move(vm_id);
  std::string text;
  {
    std::ifstream in(file, std::ios::binary);
    if (in) {
      std::ostringstream s;
      s << in.rdbuf();
      text = s.str();
    }
  }
  seq_ = last_audit_seq(text);
  file_ = std::fopen(file.c_str(), "ae");
  if (file_ == nullptr) return false;
  if (!text.empty() && text.back() != '\n') std::fputc('\n', file_);  // after a torn line
  return true;
}

std::string AuditLog::append(const nlohmann::json& body, std::int64_t timestamp_ms) {
  if (file_ == nullptr) return "";
  const std::string line = make_audit_line(seq_ + 1, timestamp_ms, vm_id_, body);
  if (std::fprintf(file_, "%s\n", line.c_str()) < 0 || std::fflush(file_) != 0) return "";
  ++seq_;
  return line;
}

std::string AuditLog::append(const audit::Event& event, std::int64_t timestamp_ms) {
  if (file_ == nullptr) return "";
  const std::string line = audit::to_line(event, seq_ + 1, timestamp_ms, vm_id_);
  if (std::fprintf(file_, "%s\n", line.c_str()) < 0 || std::fflush(file_) != 0) return "";
  ++seq_;
  return line;
}

std::string AuditLog::lifecycle(const std::string& event, nlohmann::json extra,
                                std::int64_t timestamp_ms) {
  nlohmann::json detail = extra.is_object() ? std::move(extra) : nlohmann::json::object();
  detail["event"] = event;
  return append({{"type", "lifecycle"}, {"lifecycle", std::move(detail)}}, timestamp_ms);
}

}  // namespace airlock::runtime
