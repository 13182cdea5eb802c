// WorkerPool: see worker_pool.h.
#include "worker_pool.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>

#include "loop.h"
#include "poller.h"

namespace tcplab {

void WorkerPool::start() {
  for (size_t i = 0; i < stats_.size(); i++) {
    threads_.emplace_back([this, i] {
      std::string name = "tcplab-work" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      try {
        run(i);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tcplab: %s stopped: %s\n", name.c_str(), e.what());
      }
    });
  }
}

void WorkerPool::submit(Conn* c, uint32_t mask, Loop& reactor) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Job{c, mask, &reactor});
  }
  cv_.notify_one();
}

void WorkerPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

void WorkerPool::join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WorkerPool::run(size_t i) {
  stats_[i]->tid.store(static_cast<int>(gettid()), std::memory_order_relaxed);
  ThreadStats& st = *stats_[i];
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // connections left in the queue are closed by the reactor's clean-up
      job = queue_.front();
      queue_.pop_front();
    }
    Conn* c = job.conn;
    Responses::refresh();  // the Date of this job's answers (each worker has its own)
    Next next = (job.mask & kWritable) && c->want_write ? c->on_writable(st) : c->on_readable(st, job.mask & kHangup);
    Loop& reactor = *job.reactor;
    if (next == Next::kClose) {
      reactor.post_done(c, next);  // stays busy: only the reactor touches it from now on
      continue;
    }
    if (next == Next::kLinger) reactor.post_done(c, next);  // the reactor moves its timer
    reactor.rearm(c, next);
  }
}

}  // namespace tcplab
