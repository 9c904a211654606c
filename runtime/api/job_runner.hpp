// Blocking work off the API server's loop. Creating a sandbox waits for its boot, a
// stop for QEMU's exit, an upload for the whole tree: each job runs on a thread of its
// own (they mostly wait, and one slow job must not hold up another), and its result is
// posted back to the loop. A job that throws becomes an ApiError of its kind.
#pragma once

#include <functional>
#include <list>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "runtime/api/api_error.hpp"

namespace airlock::api {

class JobRunner {
 public:
  static constexpr std::size_t kMaxJobs = 256;

  explicit JobRunner(boost::asio::io_context& io) : io_(io) {}
  ~JobRunner();  // waits for every job
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // done runs on the loop. Beyond kMaxJobs at once, done gets an internal "busy" error.
  void run(std::function<ApiResult()> work, std::function<void(ApiResult)> done);
  std::size_t running();

 private:
  struct Job {
    std::thread thread;
    bool finished = false;
  };
  void reap_finished();

  boost::asio::io_context& io_;
  std::mutex mutex_;
  std::list<Job> jobs_;
};

}  // namespace airlock::api
