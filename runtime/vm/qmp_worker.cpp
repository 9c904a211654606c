// QMP calls on a worker thread; see qmp_worker.hpp.
// GCC 12 reports a "potential null dereference" inside Asio's scheduler once it is
// inlined; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "runtime/vm/qmp_worker.hpp"

#include <boost/asio/post.hpp>

#include "runtime/vm/qmp.hpp"

namespace airlock::runtime {

QmpWorker::QmpWorker(boost::asio::io_context& io, std::string socket_path)
    : io_(io), socket_path_(std::move(socket_path)), thread_([this] { run(); }) {}

QmpWorker::~QmpWorker() {
  {
    std::lock_guard lock(mutex_);
    quitting_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void QmpWorker::execute(std::string command, std::chrono::milliseconds deadline, Done done) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(Job{std::move(command), deadline, std::move(done)});
  }
  wake_.notify_one();
}

void QmpWorker::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return quitting_ || !jobs_.empty(); });
      if (quitting_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    // A fresh connection per call: QEMU's monitor is cheap to reach, and a connection
    // left open would hold QEMU's only QMP slot.
    QmpClient qmp;
    Result<nlohmann::json> result = Error{"QMP not reached"};
    if (Result<bool> connected = qmp.connect(socket_path_, job.deadline); !connected) {
      result = Error{connected.error()};
    } else {
      result = qmp.execute(job.command, job.deadline);
    }
    boost::asio::post(io_, [done = std::move(job.done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }
}

}  // namespace airlock::runtime
