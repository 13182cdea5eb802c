// The blocking designs: the textbook servers before readiness I/O. Every connection is
// served with blocking read() and write() by one thread, start to end, so a keep-alive
// client that sits idle holds its thread until it closes or the idle timeout passes.
//
// model / threads (N):
//   iterative — 1 thread: accept one connection, serve it to its end, accept the next.
//               Everyone else waits in the accept queue. N must be 1.
//   fork      — 1 acceptor thread blocking in accept(); a fork()ed child per connection,
//               which keeps only that connection open, serves it, and exits (the parent
//               closes its copy at once). The children's counters are folded into one
//               entry in a MAP_SHARED mapping; the acceptor reaps them (waitpid by pid, at
//               the latest every 100 ms: it polls the listener with a 100 ms timeout); stop()
//               SIGKILLs and reaps those still running. N must be 1 (the acceptor).
//   thread    — 1 acceptor thread blocking in accept(); a new thread per connection
//               (256 KiB stack), which serves it and exits. N must be 1 (the acceptor).
//   prethread — N threads share the listener (see `share`); each accepts one connection,
//               serves it to its end, then waits again: with C > N keep-alive clients,
//               C − N wait in the accept queue.
//   prefork   — the same with N processes: fork()ed children (each keeps only the
//               listener open, dies with its parent: PR_SET_PDEATHSIG) block in accept()
//               on the listener they inherited; their counters and controls live in a
//               MAP_SHARED mapping; stop() SIGKILLs and reaps them (waitpid on their pids
//               only, so the host program's other children are left to it). share: accept
//               or reuseport (a listener per child, made before the fork).
//
// share (prethread; how N waiters wait on one port):
//   accept    — all block in accept() on the one listener. The kernel wakes one waiter
//               per connection (an exclusive wait): no thundering herd.
//   epoll     — the listener is non-blocking; each waiter has its own level-triggered
//               epoll instance with it and accepts when epoll_wait() returns. A
//               connection may wake several waiters; all but one find EAGAIN (futile).
//   exclusive — the same with EPOLLEXCLUSIVE: the kernel wakes one (or a few) waiters.
//   reuseport — a listener per waiter with SO_REUSEPORT: the kernel picks a waiter's
//               queue by the connection's hash; no waiter ever wakes for another's.
//
// Counters: wakeups (a wait that returned with something to do), futile_wakeups (an
// accept() that then found EAGAIN), spawned/live (the connection threads of model thread,
// the connection processes of model fork).
// pause() stops calling accept(): waiters blocked in accept() or epoll_wait() are
// interrupted by a signal (SIGURG, whose handler does nothing and has no SA_RESTART);
// stop() also shuts down every open connection so blocked reads return.
//
// Thread safety: as Server (server.h).
#pragma once
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "connection.h"
#include "forked.h"
#include "stats.h"

namespace tcplab {

enum class Share { kAccept, kEpoll, kExclusive, kReusePort };

struct BlockingConfig {
  enum Kind { kIterative, kFork, kThread, kPrethread, kPrefork } kind = kIterative;
  int waiters = 1;
  Share share = Share::kAccept;
  int64_t idle_timeout_ms = 60000;
  int64_t linger_ms = 2000;
  uint64_t max_connections = 65536;
};

class BlockingServer {
 public:
  // listeners: one per waiter for Share::kReusePort, else one (it owns and closes them).
  // stats: one per waiter (iterative, prethread), or the acceptor's and the connection
  // threads' (thread: two, the second with many writers), or the acceptor's (fork: its
  // children's entry is in the shared mapping, shared_stats(0)); none for prefork.
  BlockingServer(const BlockingConfig& cfg, const ConnLimits& limits, std::vector<int> listeners,
                 std::vector<ThreadStats*> stats);
  ~BlockingServer();

  void start();  // throws std::system_error (pthread_create, epoll_create1, fork, mmap)
  // The counters in memory shared with child processes (valid from construction): prefork's
  // N waiters', fork's connection processes' (one entry).
  ThreadStats* shared_stats(int i);
  void pause();
  void resume();
  void set_accept_rate(uint64_t per_second);
  void stop();  // idempotent; returns when every thread has ended

 private:
  struct Waiter {
    std::thread thread;
    pthread_t handle{};
    std::atomic<bool> own_in_wait{false};
    std::atomic<bool>* in_wait = &own_in_wait;  // blocked (or about to block) in accept()/epoll_wait()
    pid_t pid = 0;                              // prefork: the child process that runs this waiter
    int epfd = -1;
    int listen_fd = -1;
    ThreadStats* stats = nullptr;
    int64_t next_accept_us = 0;
  };

  void wait_loop(Waiter& w);
  [[noreturn]] void child_main(Waiter& w);
  void after_fork_in_child();
  void spawn_conn_process(int fd);
  [[noreturn]] void conn_process_main(int fd);
  void reap_children(bool all);
  int accept_one(Waiter& w);  // a connection, or -1 (stopping, paused, or an error counted)
  void spawn_conn_thread(int fd);
  void serve(int fd, ThreadStats& st, ThreadStats* fold_to);
  void interrupt_waiters();
  void close_fds();
  bool track(int fd);
  void untrack(int fd);

  BlockingConfig cfg_;
  ConnLimits limits_;
  std::vector<int> listeners_;
  std::vector<ThreadStats*> stats_;
  std::vector<std::unique_ptr<Waiter>> waiters_;

  struct Control {
    std::atomic<bool> paused{false};
    std::atomic<bool> stopping{false};
    std::atomic<uint64_t> rate{0};
  };
  // prefork: what the parent and its children share (a MAP_SHARED mapping made before fork).
  struct Shared {
    Control ctl;
    std::atomic<bool> in_wait[256];
  };
  Control own_ctl_;
  Control* ctl_ = &own_ctl_;  // the shared one for prefork
  std::unique_ptr<SharedMapping<Shared>> shared_;
  pid_t parent_ = 0;
  bool is_child_ = false;
  std::mutex mu_;  // guards the rest
  std::condition_variable cv_;
  std::unordered_set<int> open_fds_;    // connections being served (stop() shuts them down)
  uint64_t conn_threads_ = 0;           // model thread: connection threads running
  std::unordered_set<pid_t> children_;  // model fork: connection processes not yet reaped
  uint64_t reaped_ = 0;                 // model fork: of them, reaped (only the acceptor writes)
  int64_t next_full_reap_ms_ = 0;
  std::vector<ThreadStats*> shared_views_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace tcplab
