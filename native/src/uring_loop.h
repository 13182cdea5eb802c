// UringLoop: a loop thread whose I/O is io_uring completions instead of epoll readiness
// (server option io: "io_uring", models single and reuseport).
//
//   accept   one multishot accept on the listener (IORING_OP_ACCEPT, IORING_ACCEPT_MULTISHOT):
//            one submission, a completion per connection. With an accept rate set, one-shot
//            accepts instead, each armed only when the token bucket has a token; paused, the
//            accept is cancelled, so the accept queue fills as it does under epoll.
//   receive  one multishot recv per connection into a ring of provided buffers
//            (IORING_REGISTER_PBUF_RING): the kernel picks a buffer per completion and the loop
//            gives it back after copying the bytes into the connection's input.
//   send     answers are queued, one send per connection in flight; short sends go on from
//            where they stopped.
//   enter    each iteration is one io_uring_enter that submits everything queued and waits
//            for at least one completion, with the next timer's deadline as its timeout
//            (IORING_ENTER_EXT_ARG): no other system call on the hot path.
//
// The framing, answers, limits, deadlines and idle/linger timers are the epoll loop's
// (Conn::process_input, check_deadlines; the same two timer lists). A connection is closed
// at once (close(2)) and its still-pending recv cancelled; its memory is kept until the
// kernel has completed every operation that refers to it.
//
// The ring is set up with IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN where the kernel has
// them (6.1), so completions are processed only when the loop enters, in one batch. Thread
// safety as Loop: stop() and wake() from any thread; everything else in the loop's thread.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "connection.h"
#include "loop.h"
#include "stats.h"

struct io_uring;
struct io_uring_buf_ring;
struct io_uring_cqe;
struct io_uring_sqe;

namespace tcplab {

// Whether this kernel and this process may set up an io_uring: 0, or the errno of
// io_uring_setup (ENOSYS: no io_uring in the kernel; EPERM: kernel.io_uring_disabled or a
// seccomp filter refuses it).
int uring_setup_errno(bool min_wait = false);

class UringLoop : public Reactor {
 public:
  // Throws std::system_error("io_uring_setup") when the kernel refuses a ring.
  UringLoop(const LoopOptions& opts, const ConnLimits& limits, ThreadStats& stats, AcceptControl& accept);
  ~UringLoop() override;  // the thread must be joined

  void set_listener(int fd) { listen_fd_ = fd; }
  void start() override;

 private:
  struct UConn;
  enum Op : uintptr_t { kAccept = 1, kRecv = 2, kSend = 3, kWake = 4, kCancel = 5 };

  // Not inlined: bench/instructions.mjs counts what runs inside it (callgrind --toggle-collect).
  [[gnu::noinline]] void run();
  void setup_ring();
  void setup_buffers();
  io_uring_sqe* sqe();
  void enter(unsigned wait_nr, int timeout_ms);
  void handle(const io_uring_cqe* cqe);

  void arm_wake();
  void arm_accept();
  void cancel_accept();
  void on_accept(int res, bool more);
  void adopt(int fd);
  uint64_t open_connections() const;

  void arm_recv(UConn* c);
  void on_recv(UConn* c, int res, uint32_t flags);
  void on_send(UConn* c, int res);
  void serve(UConn* c);
  void queue_send(UConn* c);
  void close_conn(UConn* c);
  void release(UConn* c);  // one operation of c completed
  void give_back(unsigned bid);

  int next_timeout_ms() const;
  void expire_timers();
  void touch(Conn* c, int list) { timers_.touch(c, list, now_ms_); }
  void unlink(Conn* c) { timers_.unlink(c); }

  LoopOptions opts_;
  const ConnLimits& limits_;
  ThreadStats& stats_;
  AcceptControl& accept_;
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* bufs_ = nullptr;
  char* buf_mem_ = nullptr;
  unsigned returned_ = 0;      // buffers given back since the last advance
  unsigned sends_queued_ = 0;  // sends queued since the last enter
  bool risky_send_ = false;    // one of them may have to wait for room (queue_send())
  bool ring_registered_ = false;
  int listen_fd_ = -1;
  int spare_fd_ = -1;  // kept open on /dev/null to survive EMFILE

  // The listener: whether an accept is in the ring, of which kind, and whether a cancel is.
  bool accept_armed_ = false;
  bool accept_multishot_ = false;
  bool accept_cancelling_ = false;
  int64_t accept_blocked_until_ms_ = 0;  // rate limit or error back-off
  AcceptBucket bucket_;
  uint64_t accept_generation_ = 0;

  int64_t now_ms_ = 0;
  TimerLists timers_;
  unsigned batch_us_;  // the batch window, µs (0: none)
  std::vector<UConn*> free_conns_;
  std::vector<UConn*> all_;  // every UConn this loop made, for the destructor
};

}  // namespace tcplab
