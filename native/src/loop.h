// Loop: one thread, one Poller, the connections it owns, and optionally a listener.
// Models (server.h) are built from loops:
//   single    — one loop with the listener and all connections
//   reuseport — N loops, each with its own SO_REUSEPORT listener
//   acceptor  — one loop with only the listener; it hands fds to N loops (post_fd)
//   workers   — one loop with the listener; connection events go to a WorkerPool
//               (EPOLLONESHOT), workers hand closes back (post_done)
//   reactors+workers — N loops as reuseport, their connection events to one WorkerPool
//   reactor-procs — N loops as reuseport, each run by a fork()ed process (run_here)
//
// Thread safety: methods marked "any thread" may be called from other threads;
// everything else runs in the loop's thread (asserted in debug builds).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "connection.h"
#include "poller.h"
#include "stats.h"

namespace tcplab {

class WorkerPool;

struct AcceptControl;

// Token bucket for setAcceptRate(), one per accepting loop: holds at most 10 ms worth (at
// least one token) after an idle spell. A loop that waited for a token keeps the time its
// wake-up came late (up to one token more): capping that too lost each wake-up's lateness, and
// the reactor kept 91 accepts a second when asked for 100.
class AcceptBucket {
 public:
  // Whether loop `index` has an accept rate to keep.
  static bool limited(const AcceptControl& a, int index);
  // Takes a token for one accept; false, with *until_ms set to when one will be there, if none is.
  bool take(const AcceptControl& a, int index, int64_t* until_ms);
  void refund() {  // the token was not used (the queue was empty)
    if (at_us_ != 0) tokens_ += 1.0;
  }
  void reset() { at_us_ = 0; }  // the rate changed: start afresh

 private:
  double tokens_ = 0;
  int64_t at_us_ = 0;
  bool waiting_ = false;  // the last take() found no token: the loop sleeps until one is due
};

// A loop's connection timers: two intrusive lists of Conn (Conn::timer_list 1 idle, 2
// linger), each in deadline order because every entry of a list has the same timeout;
// touch and expiry are O(1) per connection. Deadlines are rounded up to a step (the idle
// list: a sixteenth of its timeout, 1 to 100 ms), so a timeout fires up to a step late,
// never early, and a connection touched again within its step is not relinked.
class TimerLists {
 public:
  TimerLists(int64_t idle_timeout_ms, int64_t linger_ms);
  void touch(Conn* c, int list, int64_t now_ms);  // (re)starts c's deadline on that list
  void unlink(Conn* c);
  Conn* head(int list) const { return lists_[list].head; }
  // The earliest deadline of both lists, or INT64_MAX.
  int64_t next_deadline() const;

 private:
  struct List {
    Conn* head = nullptr;
    Conn* tail = nullptr;
    int64_t timeout_ms = 0;
    int64_t granularity_ms = 1;
  } lists_[3];
};
inline constexpr int kIdle = 1;
inline constexpr int kLinger = 2;

int64_t monotonic_us();  // CLOCK_MONOTONIC (vDSO: no system call)
// Runs a loop's body in the calling thread, named tcplab-<role><index>; an exception stops the
// loop with a line on stderr instead of taking the process down.
void run_named(const char* role, int index, const std::function<void()>& body);
// The lines of every loop that stopped on an error in this process, e.g. "tcplab-loop0 stopped: epoll_wait: Bad file
// descriptor".
std::vector<std::string> loop_failures();

// What the server needs of a loop thread, whatever its I/O: epoll (Loop) or io_uring (UringLoop).
// The thread, its stop flag and its wake-up eventfd are the same for both.
class Reactor {
 public:
  Reactor();           // makes the wake-up eventfd (throws std::system_error)
  virtual ~Reactor();  // closes it; the thread must be joined
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;
  virtual void start() = 0;
  void stop();  // any thread: ask the loop to return; join() waits for it
  void join();
  void wake();  // any thread: re-read AcceptControl (and the mail, for Loop)

 protected:
  const int wake_fd_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

struct AcceptControl {  // shared by the server's accepting loops, written from JS
  std::atomic<bool> paused{false};
  std::atomic<uint64_t> rate_per_loop{0};   // accepts per second per accepting loop; 0 = unlimited
  std::atomic<uint64_t> rate_remainder{0};  // the first `remainder` loops accept one more per second
  std::atomic<uint64_t> generation{0};      // bumped on every change, before the loops are woken
  // Set before the loops start. The cap is checked against the sum of the loops' own
  // `active` counters (relaxed reads, no shared write): two loops accepting at the same
  // moment may each let one through, so the cap holds within one connection per loop.
  uint64_t max_connections = 0;  // 0 = no cap
  std::vector<const ThreadStats*> all_stats;
};

struct LoopOptions {
  bool edge = true;
  int64_t idle_timeout_ms = 60000;  // 0: never
  int64_t linger_ms = 2000;         // how long a closing connection may keep sending
  unsigned uring_batch_us = 0;      // io_uring: how long an enter may gather completions (0: not at all)
  int index = 0;
  const char* role = "loop";
};

class Loop : public Reactor {
 public:
  Loop(const LoopOptions& opts, const ConnLimits& limits, ThreadStats& stats, AcceptControl& accept);
  ~Loop() override;  // closes every fd it still owns; the thread must be joined

  // Before start(): give this loop a listening socket (it owns and closes it).
  void set_listener(int fd) { listen_fd_ = fd; }
  // Before start(): accepted fds go to these loops round-robin (acceptor model).
  void set_targets(std::vector<Loop*> targets) { targets_ = std::move(targets); }
  // Before start(): connection events go to this pool (workers model).
  void set_pool(WorkerPool* pool) { pool_ = pool; }

  void start() override;
  // Instead of start(): run the loop in the calling thread until stop() (reactor-procs: the
  // main thread of a forked child).
  void run_here();
  // The fds this loop owns (its poller's, its wake-up eventfd, its listener): a forked
  // child keeps these and closes the rest.
  std::vector<int> own_fds() const { return {poller_.fd(), wake_fd_, listen_fd_}; }

  void post_fd(int fd);                // any thread: adopt this connection
  void post_done(Conn* c, Next next);  // any thread (workers): c is back from a worker

  // Workers model: arm c's interest again after a worker handled it. Any thread.
  void rearm(Conn* c, Next next);

  ThreadStats& stats() { return stats_; }

 private:
  void prepare();
  // Not inlined: bench/instructions.mjs counts what runs inside it (callgrind --toggle-collect).
  [[gnu::noinline]] void run();
  void on_acceptable();
  void adopt(int fd);
  void on_conn(Conn* c, uint32_t mask);
  void apply(Conn* c, Next next);
  void close_conn(Conn* c);
  void drain_mail();
  void reconcile_listener();
  int next_timeout_ms() const;
  void expire_timers();
  void touch(Conn* c, int list) { timers_.touch(c, list, now_ms_); }
  void unlink(Conn* c) { timers_.unlink(c); }
  Conn* conn_get(int fd);
  void conn_put(Conn* c);
  uint64_t open_connections() const;  // over every loop of the server
  void assert_in_loop() const;

  LoopOptions opts_;
  const ConnLimits& limits_;
  ThreadStats& stats_;
  AcceptControl& accept_;
  Poller poller_;
  int listen_fd_ = -1;
  int spare_fd_ = -1;  // kept open on /dev/null to survive EMFILE
  bool listener_armed_ = false;
  std::vector<Loop*> targets_;
  size_t next_target_ = 0;
  WorkerPool* pool_ = nullptr;
  uint32_t conn_interest_flags_ = 0;  // kEdge and/or kOneShot

  std::thread::id loop_thread_;

  int64_t now_ms_ = 0;
  TimerLists timers_;
  int64_t accept_blocked_until_ms_ = 0;  // rate limit or error back-off
  AcceptBucket bucket_;
  uint64_t accept_generation_ = 0;

  std::vector<Conn*> free_conns_;
  std::vector<Conn*> graveyard_;  // closed this batch; reused after the batch

  struct Mail {
    int fd;
    Conn* conn;
    Next next;
  };
  std::mutex mail_mu_;
  std::vector<Mail> mail_;
  std::vector<Mail> mail_scratch_;

  // Sentinels that tag the poller's data pointer.
  char listener_tag_ = 0;
  char wake_tag_ = 0;
};

}  // namespace tcplab
