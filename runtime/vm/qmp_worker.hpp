// QMP off the supervisor's loop. QmpClient blocks (with deadlines of up to a second or
// two), so every QMP call runs on this worker's thread, one at a time in order, and its
// result is posted back to the loop: a `status` request or a stop escalation never
// stalls the loop that carries guest traffic and API clients. Destroy it before the
// io_context (it joins its thread; results still queued are dropped with the loop).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace airlock::runtime {

class QmpWorker {
 public:
  using Done = std::function<void(Result<nlohmann::json>)>;

  QmpWorker(boost::asio::io_context& io, std::string socket_path);
  ~QmpWorker();
  QmpWorker(const QmpWorker&) = delete;
  QmpWorker& operator=(const QmpWorker&) = delete;

  // Connects (within deadline), runs command (within deadline) and posts the result to
  // the loop. done runs on the loop's thread.
  void execute(std::string command, std::chrono::milliseconds deadline, Done done);

 private:
  struct Job {
    std::string command;
    std::chrono::milliseconds deadline;
    Done done;
  };
  void run();

  boost::asio::io_context& io_;
  std::string socket_path_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool quitting_ = false;
  std::thread thread_;
};

}  // namespace airlock::runtime
