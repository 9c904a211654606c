// The VM's audit events as a service: the log on disk (AuditLog), an index of where
// each seq starts in it, the most recent events in memory, and live subscribers.
//
// Theory of operation: open() scans the existing log once (a restarted VM continues
// its log) to index every line's offset by seq; from then on append() is the only
// writer, so the offset of each new line is known without reading the file back.
// read_from(seq) serves a bounded batch: from memory when the seq is recent (the last
// kMemoryEvents events), else from the file at the indexed offset (one seek, then
// sequential reads) — never a scan of the whole log. A caller that wants every event
// from a seq on, live, reads batches until it is caught up and subscribes in the same
// turn of the (single-threaded) loop, so nothing falls between the replay and the live
// stream: seq stays gap-free. Subscribers are called synchronously from append().
// Not thread-safe: one loop owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "audit/events.hpp"
#include "runtime/vm/audit_log.hpp"

namespace airlock::runtime {

class EventService {
 public:
  static constexpr std::size_t kMemoryEvents = 4096;

  // Opens (creating) the log and indexes what it holds. False on failure.
  bool open(const std::filesystem::path& file, const std::string& vm_id);

  // Appends one event body {"type":..., "<type>":{...}}; returns the line written ("" on
  // failure, and then nothing is indexed or delivered).
  std::string append(const nlohmann::json& body, std::int64_t now_ms);
  std::string append(const audit::Event& event, std::int64_t now_ms);
  // The log's disk filled: the line that found it used the reserve (see AuditLog).
  bool disk_full() const { return log_.disk_full(); }
  const std::string& error() const { return log_.error(); }

  std::uint64_t last_seq() const { return log_.last_seq(); }
  bool previous_run_unrecorded() const { return log_.previous_run_unrecorded(); }
  std::uint64_t first_seq() const { return first_seq_; }

  struct Batch {
    std::vector<std::string> lines;  // whole JSON lines, without newline, in seq order
    std::uint64_t next_seq = 0;      // where the next batch starts
  };
  // Events with seq >= from_seq (from_seq 0 = from the first), up to about max_bytes
  // (at least one line when there is one). An empty batch means caught up.
  Batch read_from(std::uint64_t from_seq, std::size_t max_bytes) const;

  using SubscriberId = std::uint64_t;
  SubscriberId subscribe(std::function<void(const std::string& line)> on_line);
  void unsubscribe(SubscriberId id);
  std::size_t subscribers() const { return subscribers_.size(); }

 private:
  std::string record(std::string line);

  AuditLog log_;
  std::filesystem::path path_;
  std::uint64_t first_seq_ = 1;        // seq of offsets_[0]
  std::vector<std::uint64_t> offsets_;  // byte offset of each seq's line, first_seq_ on
  std::uint64_t end_offset_ = 0;        // where the next line will start
  std::deque<std::string> recent_;      // the last lines, ending at last_seq()
  std::map<SubscriberId, std::function<void(const std::string&)>> subscribers_;
  SubscriberId next_subscriber_ = 1;
};

}  // namespace airlock::runtime
