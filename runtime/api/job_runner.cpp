// Jobs on threads; see job_runner.hpp.
// GCC 12 reports a "potential null dereference" inside Asio's scheduler once it is
// inlined; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "runtime/api/job_runner.hpp"

#include <boost/asio/post.hpp>

namespace airlock::api {

JobRunner::~JobRunner() {
  std::list<Job> jobs;
  {
    std::lock_guard lock(mutex_);
    jobs.swap(jobs_);
  }
  for (Job& job : jobs) {
    if (job.thread.joinable()) job.thread.join();
  }
}

void JobRunner::reap_finished() {
  std::list<Job> done;
  {
    std::lock_guard lock(mutex_);
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (it->finished) {
        auto next = std::next(it);
        done.splice(done.end(), jobs_, it);
        it = next;
      } else {
        ++it;
      }
    }
  }
  for (Job& job : done) job.thread.join();
}

std::size_t JobRunner::running() {
  reap_finished();
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

void JobRunner::run(std::function<ApiResult()> work, std::function<void(ApiResult)> done) {
  reap_finished();
  std::lock_guard lock(mutex_);
  if (jobs_.size() >= kMaxJobs) {
    boost::asio::post(io_, [done = std::move(done)] {
      done(ApiError{ErrorKind::internal, "too many operations in progress; try again", "busy", nullptr, 0});
    });
    return;
  }
  jobs_.emplace_back();
  Job* job = &jobs_.back();
  job->thread = std::thread([this, job, work = std::move(work), done = std::move(done)]() mutable {
    ApiResult result = ApiError{};
    try {
      result = work();
    } catch (const std::exception& e) {
      result = error_from_exception(e);
    }
    boost::asio::post(io_, [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
    std::lock_guard guard(mutex_);
    job->finished = true;
  });
}

}  // namespace airlock::api
