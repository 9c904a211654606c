// events.jsonl writer; see audit_log.hpp.
#include "runtime/vm/audit_log.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

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

bool audit_run_ended(std::string_view text) {
  // The last whole event decides; torn or foreign lines are skipped.
  std::size_t end = text.size();
  while (end > 0) {
    const std::size_t nl = text.rfind('\n', end - 1);
    const std::size_t start = nl == std::string_view::npos ? 0 : nl + 1;
    const auto j = nlohmann::json::parse(text.substr(start, end - start), nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("seq")) {
      if (j.value("type", "") != "lifecycle") return false;
      const auto it = j.find("lifecycle");
      if (it == j.end() || !it->is_object()) return false;
      const std::string event = it->value("event", "");
      return event == "stopped" || event == "failed" || event == "removed";
    }
    if (start == 0) break;
    end = start - 1;
  }
  return true;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

// Writes all of data at the end of fd; errno is left set on failure.
bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {
      errno = EIO;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// A file of `bytes` real blocks (zeros written, not a sparse hole). False if there is no room.
bool make_reserve(const std::filesystem::path& path, std::size_t bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const std::string zeros(bytes, '\0');
  const bool ok = write_all(fd, zeros.data(), zeros.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) ::unlink(path.c_str());
  return ok;
}

}  // namespace

bool AuditLog::open(const std::filesystem::path& file, std::string vm_id) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  path_ = file;
  vm_id_ = std::move(vm_id);
  disk_full_ = false;
  error_.clear();
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
  previous_run_unrecorded_ = !audit_run_ended(text);
  fd_ = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    error_ = std::string("cannot open ") + file.string() + ": " + std::strerror(errno);
    return false;
  }
  reserve_ = file;
  reserve_ += ".reserve";
  std::error_code ec;
  if (std::filesystem::file_size(reserve_, ec) != kReserveBytes || ec)
    if (!make_reserve(reserve_, kReserveBytes)) reserve_.clear();  // no room: no reserve
  if (!text.empty() && text.back() != '\n') write_all(fd_, "\n", 1);  // after a torn line
  return true;
}

void AuditLog::release_reserve() {
  if (!reserve_.empty()) ::unlink(reserve_.c_str());
  reserve_.clear();
}

bool AuditLog::write_line(const std::string& line) {
  if (fd_ < 0) return false;
  const std::string data = line + "\n";
  for (int attempt = 0; attempt < 2; ++attempt) {
    const off_t before = ::lseek(fd_, 0, SEEK_END);
    if (write_all(fd_, data.data(), data.size())) {
      if (!disk_full_) error_.clear();  // a full disk stays the reason, even with the reserve's room
      return true;
    }
    const int err = errno;
    if (before >= 0) (void)::ftruncate(fd_, before);  // no torn line
    error_ = std::string("cannot write ") + path_.string() + ": " + std::strerror(err);
    if ((err != ENOSPC && err != EDQUOT) || reserve_.empty()) return false;
    disk_full_ = true;
    release_reserve();  // room for this line and the caller's last word
  }
  return false;
}

std::string AuditLog::append(const nlohmann::json& body, std::int64_t timestamp_ms) {
  const std::string line = make_audit_line(seq_ + 1, timestamp_ms, vm_id_, body);
  if (!write_line(line)) return "";
  ++seq_;
  return line;
}

std::string AuditLog::append(const audit::Event& event, std::int64_t timestamp_ms) {
  const std::string line = audit::to_line(event, seq_ + 1, timestamp_ms, vm_id_);
  if (!write_line(line)) return "";
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
