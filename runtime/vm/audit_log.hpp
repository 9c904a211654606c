// The VM's audit log: events.jsonl, one JSON object per line, flushed as written.
//
// Each line is {"seq","type","timestamp" (unix ms),"vm_id", <type>: {...}}. seq counts
// from 1 with no gaps, so a reader can prove nothing was lost; reopening an existing log
// continues after its last valid line (a torn last line, from a crash mid-write, is
// ignored for numbering and the next line starts on a fresh line). One writer at a
// time: the supervisor while it lives, then the CLI for the final "removed" event.
//
// A full disk never leaves a torn line or a silent gap. open() sets aside a small reserve
// file next to the log (<log>.reserve). A write that fails is rolled back to the last
// whole line; if it failed for want of space, the reserve is given back and the same line
// is written again, and disk_full() turns true: the caller must stop whatever produces
// events (the VM's network) and record why, which the rest of the reserve has room for.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "audit/events.hpp"

namespace airlock::runtime {

// The JSON line (without newline) for one event body {"type":..., "<type>":{...}}.
std::string make_audit_line(std::uint64_t seq, std::int64_t timestamp_ms, const std::string& vm_id,
                            const nlohmann::json& body);

// The highest seq in a log's text; 0 for an empty or unreadable log.
std::uint64_t last_audit_seq(std::string_view text);
// Whether the log's last run was recorded to its end: no events, or the last one is
// lifecycle stopped, failed or removed. False after a supervisor that was killed.
bool audit_run_ended(std::string_view text);

class AuditLog {
 public:
  AuditLog() = default;
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Opens (creating) the log for appending. False on failure.
  bool open(const std::filesystem::path& file, std::string vm_id);
  // Appends one event and flushes; returns the line written (without newline), or ""
  // if the write failed.
  std::string append(const nlohmann::json& body, std::int64_t timestamp_ms);
  // The same for a typed event (audit/events.hpp), serialised by its one serializer.
  std::string append(const audit::Event& event, std::int64_t timestamp_ms);
  // Convenience for lifecycle events: {"type":"lifecycle","lifecycle":{"event":E,...extra}}.
  std::string lifecycle(const std::string& event, nlohmann::json extra, std::int64_t timestamp_ms);

  std::uint64_t last_seq() const { return seq_; }
  // At open: the log's previous run ended without its last record (audit_run_ended).
  bool previous_run_unrecorded() const { return previous_run_unrecorded_; }
  const std::filesystem::path& path() const { return path_; }

  // True once a write has found the disk full (the reserve is then in use).
  bool disk_full() const { return disk_full_; }
  // Why the last write failed ("" when it did not).
  const std::string& error() const { return error_; }

  static constexpr std::size_t kReserveBytes = 64 * 1024;

 private:
  bool write_line(const std::string& line);
  void release_reserve();

  int fd_ = -1;
  bool disk_full_ = false;
  bool previous_run_unrecorded_ = false;
  std::string error_;
  std::filesystem::path reserve_;
  std::filesystem::path path_;
  std::string vm_id_;
  std::uint64_t seq_ = 0;
};

}  // namespace airlock::runtime
