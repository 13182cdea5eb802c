// UringLoop: see uring_loop.h.
#include "uring_loop.h"

#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <system_error>

#include "uring.h"

namespace tcplab {

namespace {

constexpr unsigned kSqEntries = 4096;
constexpr unsigned kCqEntries = 16384;
constexpr unsigned kBufs = 512;  // provided receive buffers (a power of two)
constexpr unsigned kBufSize = 4096;
constexpr int kBufGroup = 0;
constexpr int64_t kAcceptBackoffMs = 100;
// How long an enter waits past the completions of the sends it submitted for one more
// event, at most, when the loop has more to do for a connection once its send is done (see
// run() and serve()).
constexpr int kSendWaitMs = 1;
// With a batch window: the completions an enter waits for before the window is up.
constexpr unsigned kBatchCqes = 32;
constexpr unsigned kFeatMinTimeout = 1u << 15;  // IORING_FEAT_MIN_TIMEOUT (6.12; not in liburing 2.3's header)

}  // namespace

bool uring_built() { return true; }

std::unique_ptr<Reactor> make_uring_loop(const LoopOptions& opts, const ConnLimits& limits, ThreadStats& stats,
                                         AcceptControl& accept, int listen_fd) {
  auto loop = std::make_unique<UringLoop>(opts, limits, stats, accept);
  loop->set_listener(listen_fd);
  return loop;
}

int uring_setup_errno(bool min_wait) {
  io_uring r;
  const int e = io_uring_queue_init(2, &r, 0);
  if (e < 0) return -e;
  const bool has_min_wait = (r.features & kFeatMinTimeout) != 0;
  io_uring_queue_exit(&r);
  return min_wait && !has_min_wait ? EOPNOTSUPP : 0;
}

// A connection and what the ring holds of it. Aligned to 64 so that its address leaves the
// low 6 bits of user_data for the operation (3 bits) and a generation (3 bits): a cancel
// names one exact operation, never the next connection's that reuses this memory.
struct alignas(64) UringLoop::UConn : Conn {
  UConn(int fd, const ConnLimits& l) : Conn(fd, l) {}
  int ops = 0;       // operations in the ring that refer to it
  unsigned gen = 0;  // bumped on every reuse
  bool recv_armed = false;
  bool send_inflight = false;
  bool eof = false;      // the peer's FIN arrived
  bool closing = false;  // closed: kept until ops is 0
  size_t send_end = 0;   // where in `out` the send in flight ends
  std::string overflow;  // received bytes `in` had no room for (reading is paused meanwhile)
};

namespace {
template <typename T>
uint64_t tag(T* p, unsigned op, unsigned gen = 0) {
  return reinterpret_cast<uintptr_t>(p) | ((gen & 7u) << 3) | op;
}
}  // namespace

UringLoop::UringLoop(const LoopOptions& opts, const ConnLimits& limits, ThreadStats& stats, AcceptControl& accept)
    : opts_(opts),
      limits_(limits),
      stats_(stats),
      accept_(accept),
      timers_(opts.idle_timeout_ms, opts.linger_ms),
      batch_us_(opts.uring_batch_us) {
  // The ring itself is made by the loop's thread (SINGLE_ISSUER ties it to its maker); this
  // one only asks the kernel whether it would, so that a refusal is the caller's error.
  if (const int e = uring_setup_errno(opts.uring_batch_us != 0))
    throw std::system_error(e, std::generic_category(), "io_uring_setup");
}

UringLoop::~UringLoop() {
  if (ring_ != nullptr) {
    io_uring_queue_exit(ring_);  // cancels and completes whatever is still in it
    delete ring_;
  }
  if (bufs_ != nullptr) munmap(bufs_, kBufs * sizeof(io_uring_buf));
  if (buf_mem_ != nullptr) munmap(buf_mem_, static_cast<size_t>(kBufs) * kBufSize);
  for (UConn* c : all_) {
    if (!c->closing && c->fd >= 0) close(c->fd);
    delete c;
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (spare_fd_ >= 0) close(spare_fd_);
}

void UringLoop::start() {
  if (listen_fd_ >= 0) spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  thread_ = std::thread([this] { run_named(opts_.role, opts_.index, [this] { run(); }); });
}

void UringLoop::setup_ring() {
  ring_ = new io_uring;
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  p.cq_entries = kCqEntries;
  int r = io_uring_queue_init_params(kSqEntries, ring_, &p);
  if (r == -EINVAL) {  // a kernel before 6.1: without the task-run flags
    p = io_uring_params{};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = kCqEntries;
    r = io_uring_queue_init_params(kSqEntries, ring_, &p);
  }
  if (r < 0) {
    delete ring_;
    ring_ = nullptr;
    throw std::system_error(-r, std::generic_category(), "io_uring_setup");
  }
  // Each io_uring_enter then skips looking the ring's fd up (5.18+; a refusal costs only that).
  ring_registered_ = io_uring_register_ring_fd(ring_) == 1;
}

// One io_uring_enter: hands the kernel what was queued, and waits for `wait_nr` completions or
// `timeout_ms` (-1: none). With a batch window, it returns once that long has passed with at
// least one completion, even short of `wait_nr`. liburing 2.3 (Debian 12's) has no call that
// passes the kernel's minimum wait, so the enter is made here: the submission queue's tail is
// published as io_uring_submit would, and the wait's arguments are the kernel's own
// (io_uring_getevents_arg, whose `pad` became `min_wait_usec` in 6.12).
void UringLoop::enter(unsigned wait_nr, int timeout_ms) {
  io_uring_sq& sq = ring_->sq;
  const unsigned tail = sq.sqe_tail;
  if (sq.sqe_head != tail) {
    sq.sqe_head = tail;
    io_uring_smp_store_release(sq.ktail, tail);
  }
  const unsigned submit = tail - io_uring_smp_load_acquire(sq.khead);
  __kernel_timespec ts{};
  io_uring_getevents_arg arg{};
  arg.sigmask_sz = _NSIG / 8;
  if (batch_us_ != 0) {
    arg.pad = batch_us_;  // min_wait_usec
    // Without a general timeout the kernel would take the minimum wait for one, and an idle
    // loop would wake every window: so there is always one, a day at most.
    if (timeout_ms < 0) timeout_ms = 86400000;
  }
  if (timeout_ms >= 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
    arg.ts = reinterpret_cast<uintptr_t>(&ts);
  }
  const unsigned flags =
      IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG | (ring_registered_ ? IORING_ENTER_REGISTERED_RING : 0);
  const int fd = ring_registered_ ? ring_->enter_ring_fd : ring_->ring_fd;
  const int r =
      io_uring_enter2(static_cast<unsigned>(fd), submit, wait_nr, flags, reinterpret_cast<sigset_t*>(&arg), sizeof arg);
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN)
    throw std::system_error(-r, std::generic_category(), "io_uring_enter");
}

void UringLoop::setup_buffers() {
  void* ring_mem =
      mmap(nullptr, kBufs * sizeof(io_uring_buf), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  void* mem =
      mmap(nullptr, static_cast<size_t>(kBufs) * kBufSize, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring_mem == MAP_FAILED || mem == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
  bufs_ = static_cast<io_uring_buf_ring*>(ring_mem);
  buf_mem_ = static_cast<char*>(mem);
  io_uring_buf_ring_init(bufs_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(ring_mem);
  reg.ring_entries = kBufs;
  reg.bgid = kBufGroup;
  const int r = io_uring_register_buf_ring(ring_, &reg, 0);
  if (r < 0) throw std::system_error(-r, std::generic_category(), "io_uring_register_buf_ring");
  for (unsigned i = 0; i < kBufs; i++)
    io_uring_buf_ring_add(bufs_, buf_mem_ + static_cast<size_t>(i) * kBufSize, kBufSize, static_cast<unsigned short>(i),
                          io_uring_buf_ring_mask(kBufs), static_cast<int>(i));
  io_uring_buf_ring_advance(bufs_, kBufs);
}

void UringLoop::give_back(unsigned bid) {
  io_uring_buf_ring_add(bufs_, buf_mem_ + static_cast<size_t>(bid) * kBufSize, kBufSize,
                        static_cast<unsigned short>(bid), io_uring_buf_ring_mask(kBufs), static_cast<int>(returned_));
  returned_++;
}

io_uring_sqe* UringLoop::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(ring_);
  if (s == nullptr) {  // the submission queue is full: hand it to the kernel now
    io_uring_submit(ring_);
    // The sends it held may complete now, and be handled in this very pass: the next enter
    // must not wait for them (at worst it ends early, on one of theirs).
    sends_queued_ = 0;
    risky_send_ = true;
    s = io_uring_get_sqe(ring_);
  }
  if (s == nullptr) throw std::runtime_error("io_uring: no submission queue entry after a submit");
  return s;
}

void UringLoop::run() {
  stats_.tid.store(static_cast<int>(gettid()), std::memory_order_relaxed);
  setup_ring();
  setup_buffers();
  now_ms_ = monotonic_us() / 1000;
  arm_wake();
  arm_accept();
  while (!stopping_.load(std::memory_order_acquire)) {
    // One io_uring_enter: submits what this iteration queued and waits for a completion,
    // until the next timer at the latest. A send to a socket with room completes during the
    // submit, and its completion alone would end the wait: the next request would then take
    // a second enter. So the wait is for one completion more than the sends submitted.
    // Where the loop has more to do for a connection once its send is done (serve()), the
    // wait must not end only at the next event: then the enter's timeout is kSendWaitMs.
    // Not on every enter: arming that timer on each wait cost the loop a quarter of its
    // requests per CPU-second at a fixed rate (89,634 → 67,123 in the bench, on this VM).
    const unsigned wait_nr = sends_queued_ + (batch_us_ != 0 ? kBatchCqes : 1);
    int t = next_timeout_ms();
    if (risky_send_ && (t < 0 || t > kSendWaitMs)) t = kSendWaitMs;
    sends_queued_ = 0;
    risky_send_ = false;
    enter(wait_nr, t);
    now_ms_ = monotonic_us() / 1000;
    Responses::refresh();  // the Date of this batch's answers
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring_, head, cqe) {
      handle(cqe);
      seen++;
    }
    io_uring_cq_advance(ring_, seen);
    if (returned_ != 0) {
      io_uring_buf_ring_advance(bufs_, static_cast<int>(returned_));
      returned_ = 0;
    }
    expire_timers();
    if (accept_blocked_until_ms_ != 0 && now_ms_ >= accept_blocked_until_ms_) {
      accept_blocked_until_ms_ = 0;
      arm_accept();
    }
  }
}

void UringLoop::handle(const io_uring_cqe* cqe) {
  const uint64_t ud = cqe->user_data;
  const unsigned op = static_cast<unsigned>(ud & 7u);
  const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  switch (op) {
    case kWake: {
      uint64_t v;
      ssize_t r = read(wake_fd_, &v, sizeof v);
      (void)r;
      if (!more) arm_wake();
      const uint64_t gen = accept_.generation.load(std::memory_order_acquire);
      if (gen != accept_generation_) {  // pause/resume/rate changed: start afresh
        accept_generation_ = gen;
        accept_blocked_until_ms_ = 0;
        bucket_.reset();
      }
      const bool paused = accept_.paused.load(std::memory_order_acquire);
      const bool want_multishot = !AcceptBucket::limited(accept_, opts_.index);
      if (accept_armed_ && (paused || accept_multishot_ != want_multishot))
        cancel_accept();  // its last completion arms the right kind again
      else
        arm_accept();
      return;
    }
    case kAccept:
      on_accept(cqe->res, more);
      return;
    case kRecv:
      on_recv(reinterpret_cast<UConn*>(ud & ~uint64_t{63}), cqe->res, cqe->flags);
      return;
    case kSend:
      on_send(reinterpret_cast<UConn*>(ud & ~uint64_t{63}), cqe->res);
      return;
    default:  // kCancel: the cancelled operation reports for itself
      return;
  }
}

// ---- accepting -------------------------------------------------------------

void UringLoop::arm_wake() {
  io_uring_sqe* s = sqe();
  io_uring_prep_poll_multishot(s, wake_fd_, POLLIN);
  io_uring_sqe_set_data64(s, tag(this, kWake));
}

void UringLoop::arm_accept() {
  if (listen_fd_ < 0 || accept_armed_ || accept_cancelling_ || accept_blocked_until_ms_ != 0) return;
  if (accept_.paused.load(std::memory_order_acquire)) return;
  const bool limited = AcceptBucket::limited(accept_, opts_.index);
  if (limited && !bucket_.take(accept_, opts_.index, &accept_blocked_until_ms_)) return;  // armed again then
  io_uring_sqe* s = sqe();
  if (limited)
    io_uring_prep_accept(s, listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  else
    io_uring_prep_multishot_accept(s, listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, tag(this, kAccept));
  accept_armed_ = true;
  accept_multishot_ = !limited;
}

void UringLoop::cancel_accept() {
  if (!accept_armed_ || accept_cancelling_) return;
  io_uring_sqe* s = sqe();
  io_uring_prep_cancel64(s, tag(this, kAccept), 0);
  io_uring_sqe_set_data64(s, kCancel);
  accept_cancelling_ = true;
}

void UringLoop::on_accept(int res, bool more) {
  if (!more) accept_armed_ = accept_cancelling_ = false;
  if (res >= 0) {
    stats_.accepted.add();
    adopt(res);
  } else if (res != -ECANCELED) {
    const int e = -res;
    stats_.accept_errors[classify_accept_errno(e)].add();
    if (e == EMFILE || e == ENFILE) {
      // As the epoll loop: give back the spare fd, take the queued connection and close it
      // (the client sees a close, not a hang), take the spare again.
      stats_.emfile_events.add();
      bool absorbed = false;
      if (spare_fd_ >= 0) {
        close(spare_fd_);
        const int victim = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (victim >= 0) close(victim);
        spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        absorbed = victim >= 0 && spare_fd_ >= 0;
      }
      if (!absorbed) accept_blocked_until_ms_ = now_ms_ + kAcceptBackoffMs;
    } else if (e == ENOBUFS || e == ENOMEM) {
      accept_blocked_until_ms_ = now_ms_ + kAcceptBackoffMs;
    }
    // ECONNABORTED, EPROTO, EPERM …: that connection is gone; the next one may be fine.
  }
  if (!accept_armed_) arm_accept();
}

uint64_t UringLoop::open_connections() const {
  uint64_t n = 0;
  for (const ThreadStats* s : accept_.all_stats) n += s->active.get();
  return n;
}

void UringLoop::adopt(int fd) {
  if (accept_.max_connections != 0 && open_connections() >= accept_.max_connections) {
    close(fd);
    stats_.over_cap.add();
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  UConn* c;
  if (free_conns_.empty()) {
    c = new UConn(fd, limits_);
    all_.push_back(c);
  } else {
    c = free_conns_.back();
    free_conns_.pop_back();
    c->reset(fd);
    c->gen++;
    c->recv_armed = c->send_inflight = c->eof = c->closing = false;
    c->overflow.clear();
  }
  stats_.active.add();
  touch(c, kIdle);
  arm_recv(c);
}

// ---- connections -----------------------------------------------------------

void UringLoop::arm_recv(UConn* c) {
  io_uring_sqe* s = sqe();
  io_uring_prep_recv_multishot(s, c->fd, nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = kBufGroup;
  io_uring_sqe_set_data64(s, tag(c, kRecv, c->gen));
  c->recv_armed = true;
  c->ops++;
}

void UringLoop::on_recv(UConn* c, int res, uint32_t flags) {
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) c->recv_armed = false;
  if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
    const unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
    if (!c->closing) {
      const char* data = buf_mem_ + static_cast<size_t>(bid) * kBufSize;
      const size_t n = static_cast<size_t>(res);
      stats_.bytes_in.add(n);
      if (c->lingering) {
        c->lingered += n;
        if (c->lingered > limits_.linger_max_bytes) close_conn(c);
      } else {
        const size_t fit = c->overflow.empty() ? std::min(n, limits_.in_cap - c->in_len) : 0;
        std::memcpy(c->in.get() + c->in_len, data, fit);
        c->in_len += fit;
        if (fit < n) c->overflow.append(data + fit, n - fit);
      }
    }
    give_back(bid);
  }
  if (!c->closing) {
    if (res == 0) {  // the peer's FIN: answer what came before it, then close
      c->eof = true;
      if (c->lingering)
        close_conn(c);
      else
        serve(c);
    } else if (res > 0) {
      if (!c->lingering) serve(c);
    } else if (res != -ENOBUFS && res != -ECANCELED) {
      close_conn(c);  // ECONNRESET, ETIMEDOUT …
    }
    // A multishot recv that ended (out of buffers, cancelled for a stall) is armed again
    // when the connection reads on: now, unless input is piled up waiting for output room.
    if (!c->closing && !c->recv_armed && !c->eof && c->overflow.empty() && !c->read_stalled) arm_recv(c);
  }
  if (!more) release(c);
}

// Frames what came in, answers it, sends; decides what the connection waits for next.
void UringLoop::serve(UConn* c) {
  if (c->closing || c->lingering) return;
  bool stalled;
  for (;;) {
    stalled = c->process_input(stats_);
    if (c->close_after_flush || c->overflow.empty()) break;
    const size_t take = std::min(limits_.in_cap - c->in_len, c->overflow.size());
    if (take == 0) break;
    std::memcpy(c->in.get() + c->in_len, c->overflow.data(), take);
    c->in_len += take;
    c->overflow.erase(0, take);
  }
  c->check_deadlines(stats_);
  if (c->close_after_flush) c->overflow.clear();
  c->read_stalled = stalled;
  // Input piling up beyond `in` while answers wait for room: stop receiving until they go.
  if (!c->overflow.empty() && c->recv_armed) {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, tag(c, kRecv, c->gen), 0);
    io_uring_sqe_set_data64(s, kCancel);
  }
  if (!c->request_pending() || c->timer_list != 1) touch(c, kIdle);
  queue_send(c);
  // A send under way, after which the loop has more to do for this connection: answers
  // queued behind it, a close, input waiting for room. Its completion may be one the next
  // enter counts in its wait (run()), so that enter must not sleep on past it.
  if (c->send_inflight &&
      (c->out_len != c->send_end || c->eof || c->close_after_flush || c->read_stalled || !c->overflow.empty()))
    risky_send_ = true;
  if (c->send_inflight || c->out_len != 0) return;
  // Everything answered has gone.
  if (c->close_after_flush) {
    // FIN after the last answer, then read and drop what the client still sends (as the
    // epoll loop, so that a close with unread input does not reset the answer away).
    ::shutdown(c->fd, SHUT_WR);
    c->lingering = true;
    c->in_len = 0;
    touch(c, kLinger);
    if (c->eof) close_conn(c);
  } else if (c->eof) {
    close_conn(c);
  }
}

void UringLoop::queue_send(UConn* c) {
  if (c->send_inflight || c->closing || c->out_off >= c->out_len) return;
  io_uring_sqe* s = sqe();
  // MSG_WAITALL: the kernel sends all of it before it completes (it waits for room as
  // often as it must), so no short send leaves the rest for the loop to send.
  io_uring_prep_send(s, c->fd, c->out.get() + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_WAITALL);
  c->send_end = c->out_len;
  io_uring_sqe_set_data64(s, tag(c, kSend, c->gen));
  c->send_inflight = true;
  c->ops++;
  sends_queued_++;
}

void UringLoop::on_send(UConn* c, int res) {
  c->send_inflight = false;
  if (!c->closing) {
    if (res < 0 && res != -EAGAIN && res != -EINTR) {
      close_conn(c);  // EPIPE, ECONNRESET
    } else {
      if (res > 0) {
        stats_.bytes_out.add(static_cast<uint64_t>(res));
        c->out_off += static_cast<size_t>(res);
        if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
      }
      serve(c);  // goes on with input left for lack of room, sends the rest
      if (!c->closing && !c->recv_armed && !c->eof && !c->read_stalled && c->overflow.empty()) arm_recv(c);
    }
  }
  release(c);
}

void UringLoop::close_conn(UConn* c) {
  if (c->closing) return;
  unlink(c);
  if (c->recv_armed) {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, tag(c, kRecv, c->gen), 0);
    io_uring_sqe_set_data64(s, kCancel);
  }
  close(c->fd);  // the ring's own references keep the socket until its operations end
  c->fd = -1;
  c->closing = true;
  stats_.closed.add();
  stats_.active.sub();
  if (c->ops == 0) free_conns_.push_back(c);
}

void UringLoop::release(UConn* c) {
  if (--c->ops == 0 && c->closing) free_conns_.push_back(c);
}

// ---- timers (TimerLists, loop.h) ------------------------------------------

int UringLoop::next_timeout_ms() const {
  int64_t next = timers_.next_deadline();
  if (accept_blocked_until_ms_ != 0 && accept_blocked_until_ms_ < next) next = accept_blocked_until_ms_;
  if (next == INT64_MAX) return -1;
  const int64_t wait = next - now_ms_;
  if (wait < 0) return 0;
  return wait > INT_MAX ? INT_MAX : static_cast<int>(wait);
}

void UringLoop::expire_timers() {
  for (Conn* c; (c = timers_.head(kLinger)) != nullptr && c->deadline_ms <= now_ms_;)
    close_conn(static_cast<UConn*>(c));
  for (Conn* c; (c = timers_.head(kIdle)) != nullptr && c->deadline_ms <= now_ms_;) {
    stats_.idle_timeouts.add();
    close_conn(static_cast<UConn*>(c));
  }
}

}  // namespace tcplab
