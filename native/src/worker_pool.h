// WorkerPool: the thread pool of the workers and reactors+workers models. A reactor loop submits a
// connection whose EPOLLONESHOT interest just fired (so no other event for it can
// arrive); a worker does the I/O, then re-arms the interest or hands the
// connection back to the reactor to close. This is the design of many small C
// web servers; it costs a queue hand-off, a wake-up and an epoll_ctl per event,
// which is what the lab shows next to the other models.
//
// Thread safety: submit() from the reactor threads; start/stop/join from the owner.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "connection.h"
#include "stats.h"

namespace tcplab {

class Loop;

class WorkerPool {
 public:
  // stats[i] is written by worker i only.
  explicit WorkerPool(std::vector<ThreadStats*> stats) : stats_(std::move(stats)) {}
  ~WorkerPool() {
    stop();
    join();
  }

  void start();
  // c's event, from `reactor`, the loop that owns c (and takes it back).
  void submit(Conn* c, uint32_t mask, Loop& reactor);
  void stop();
  void join();

 private:
  struct Job {
    Conn* conn;
    uint32_t mask;
    Loop* reactor;
  };
  void run(size_t i);

  std::vector<ThreadStats*> stats_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
};

}  // namespace tcplab
