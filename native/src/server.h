// Server: the reactor as a whole: listener(s), loops and threads for one model.
//
// model / threads (N):
//   single    — 1 thread accepts and serves everything. N must be 1.
//   reuseport — N threads, each with its own SO_REUSEPORT listener on the same port
//               (same backlog on each, so N accept queues) and its own loop (nginx style).
//   acceptor  — 1 acceptor thread owns the only listener and hands each connection to
//               one of N I/O loops, round-robin, through an eventfd-signalled queue
//               (muduo style). N+1 threads.
//   workers   — 1 reactor thread accepts and waits for events; N worker threads do
//               the I/O, re-arming EPOLLONESHOT after each event. N+1 threads.
//   reactors+workers — N reactor threads, each with its own SO_REUSEPORT listener and
//               epoll instance, hand every connection event to one pool of N worker
//               threads (EPOLLONESHOT, as workers does). 2N threads.
//   reactor-procs — N fork()ed processes, each with its own SO_REUSEPORT listener and one
//               loop (nginx's worker processes). Each child keeps only its loop's fds, dies
//               with its parent (PR_SET_PDEATHSIG); its counters and the accept controls
//               live in a MAP_SHARED mapping; stop() SIGKILLs and reaps the children.
//   iterative, fork, thread, prethread, prefork — the blocking designs, with `share` for
//               the pools' waiters: see blocking.h.
// trigger: edge (EPOLLET, default) or level, for listeners and connections alike
// (the reactor models on epoll).
// io: epoll (default) or io_uring (single and reuseport: uring_loop.h), whose loops take
// completions instead of readiness; listen() throws SysError{…, "io_uring_setup"} where the
// kernel or a seccomp filter refuses rings.
//
// Thread safety: listen/stop from one controlling thread (the JS thread);
// pause/resume/set_accept_rate and reading threads()' counters (relaxed atomics) from any thread.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "blocking.h"
#include "connection.h"
#include "loop.h"
#include "stats.h"
#include "worker_pool.h"

namespace tcplab {

enum class Model {
  kSingle,
  kReusePort,
  kAcceptor,
  kWorkers,
  kReactorsWorkers,
  kReactorProcs,
  kIterative,
  kFork,
  kThread,
  kPrethread,
  kPrefork
};

// Every model's name, as the options and the stats spell it.
struct ModelName {
  const char* name;
  Model model;
};
inline constexpr ModelName kModelNames[] = {{"single", Model::kSingle},
                                            {"reuseport", Model::kReusePort},
                                            {"acceptor", Model::kAcceptor},
                                            {"workers", Model::kWorkers},
                                            {"reactors+workers", Model::kReactorsWorkers},
                                            {"reactor-procs", Model::kReactorProcs},
                                            {"iterative", Model::kIterative},
                                            {"fork", Model::kFork},
                                            {"thread", Model::kThread},
                                            {"prethread", Model::kPrethread},
                                            {"prefork", Model::kPrefork}};

struct ServerConfig {
  std::string host = "0.0.0.0";
  int port = 0;
  int backlog = 511;  // passed to listen() exactly as given: the kernel's clamp is what the lab observes
  Model model = Model::kSingle;
  int threads = 1;
  bool edge = true;
  Share share = Share::kAccept;  // prethread: how the waiters share the port
  bool reuse_port = false;       // SO_REUSEPORT on the listener (always on for the reuseport model)
  int64_t idle_timeout_ms = 60000;
  size_t max_header_bytes = RequestFramer::kDefaultMaxHeaderBytes;
  uint64_t max_body_bytes = RequestFramer::kDefaultMaxBodyBytes;
  int64_t header_timeout_ms = 10000;
  int64_t body_timeout_ms = 30000;
  uint64_t max_connections = 65536;
  int64_t work_us = 0;          // simulated work per request (connection.h)
  bool work_sleep = false;      // sleep instead of spinning
  bool io_uring = false;        // single, reuseport: io_uring loops instead of epoll loops
  unsigned uring_batch_us = 0;  // io_uring: the batch window (uring_loop.h)
};

// An OS error with the failing call's name.
struct SysError {
  int err;
  std::string syscall;
};

class Server {
 public:
  explicit Server(const ServerConfig& cfg);
  ~Server();

  // Binds, listens, starts the threads. Returns the bound port, or throws SysError.
  int listen();
  void pause();
  void resume();
  void set_accept_rate(uint64_t per_second);
  bool paused() const { return accept_->paused.load(); }
  uint64_t accept_rate() const { return accept_rate_; }
  // Stops the threads, joins them, closes every fd. Idempotent.
  void stop();

  struct ThreadView {
    std::string role;
    const ThreadStats* stats;
  };
  const std::vector<ThreadView>& threads() const { return views_; }

 private:
  void notify_accepting_loops();
  void discard();
  void map_proc_stats(int n);
  void fork_procs();
  void reap_procs();
  static std::string syscall_of(const std::system_error& e);

  ServerConfig cfg_;
  ConnLimits limits_;
  AcceptControl own_accept_;
  // reactor-procs: the accept controls and the children's counters, shared with them (MAP_SHARED);
  // declared before the loops, which refer to it, so that it outlives them.
  std::unique_ptr<SharedMapping<AcceptControl>> procs_map_;
  AcceptControl* accept_ = &own_accept_;  // reactor-procs: procs_map_'s
  uint64_t accept_rate_ = 0;
  std::vector<std::unique_ptr<ThreadStats>> stats_;
  std::vector<ThreadView> views_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::unique_ptr<Reactor>> urings_;  // io_uring: instead of loops_
  std::vector<Reactor*> accepting_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<BlockingServer> blocking_;  // the blocking designs, instead of loops
  // reactor-procs: the children's counters (in procs_map_), the children.
  std::vector<ThreadStats*> proc_stats_;
  std::vector<pid_t> procs_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace tcplab
