// Loop: see loop.h.
#include "loop.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <exception>
#include <string>
#include <system_error>

#include "worker_pool.h"

namespace tcplab {

namespace {

constexpr int kBatch = 256;
constexpr int64_t kAcceptBackoffMs = 100;  // after ENOBUFS/ENOMEM or an EMFILE we could not absorb

}  // namespace

int64_t monotonic_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no system call
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

namespace {
std::mutex failures_mu;
std::vector<std::string> failures_seen;
}  // namespace

std::vector<std::string> loop_failures() {
  std::lock_guard<std::mutex> lk(failures_mu);
  return failures_seen;
}

void run_named(const char* role, int index, const std::function<void()>& body) {
  std::string name = std::string("tcplab-") + role + std::to_string(index);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  // An exception must not take the process down with it: the loop stops, says why on stderr,
  // and keeps the line for stats() (JS sees it there).
  try {
    body();
  } catch (const std::exception& e) {
    std::string line = name + " stopped: " + e.what();
    std::fprintf(stderr, "tcplab: %s\n", line.c_str());
    std::lock_guard<std::mutex> lk(failures_mu);
    if (failures_seen.size() < 64) failures_seen.push_back(std::move(line));
  }
}

bool AcceptBucket::limited(const AcceptControl& a, int index) {
  return a.rate_per_loop.load(std::memory_order_relaxed) != 0 ||
         static_cast<uint64_t>(index) < a.rate_remainder.load(std::memory_order_relaxed);
}

bool AcceptBucket::take(const AcceptControl& a, int index, int64_t* until_ms) {
  uint64_t rate = a.rate_per_loop.load(std::memory_order_relaxed);
  if (static_cast<uint64_t>(index) < a.rate_remainder.load(std::memory_order_relaxed)) rate++;
  if (rate == 0) return true;
  const int64_t now = monotonic_us();
  const double cap = rate / 100.0 > 1.0 ? rate / 100.0 : 1.0;
  if (at_us_ == 0)
    tokens_ = 1.0;
  else
    tokens_ += static_cast<double>(now - at_us_) * static_cast<double>(rate) / 1e6;
  const double limit = waiting_ ? cap + 1.0 : cap;
  if (tokens_ > limit) tokens_ = limit;
  at_us_ = now;
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    waiting_ = false;
    return true;
  }
  waiting_ = true;
  const double wait_ms = (1.0 - tokens_) * 1000.0 / static_cast<double>(rate);
  *until_ms = now / 1000 + static_cast<int64_t>(wait_ms) + 1;
  return false;
}

TimerLists::TimerLists(int64_t idle_timeout_ms, int64_t linger_ms) {
  lists_[kIdle].timeout_ms = idle_timeout_ms > 0 ? idle_timeout_ms : INT64_MAX / 4;
  // A sixteenth of the timeout, 1 to 100 ms: the idle timeout fires that much late at most.
  lists_[kIdle].granularity_ms = std::clamp<int64_t>(lists_[kIdle].timeout_ms / 16, 1, 100);
  lists_[kLinger].timeout_ms = linger_ms;
  lists_[kLinger].granularity_ms = 1;
}

void TimerLists::unlink(Conn* c) {
  if (c->timer_list == 0) return;
  List& list = lists_[c->timer_list];
  if (c->prev)
    c->prev->next = c->next;
  else
    list.head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    list.tail = c->prev;
  c->prev = c->next = nullptr;
  c->timer_list = 0;
}

void TimerLists::touch(Conn* c, int which, int64_t now_ms) {
  List& list = lists_[which];
  // Deadlines are rounded up to the list's step. One still at or past the new deadline
  // keeps its place, which is still in order: no write at all, so a busy keep-alive
  // connection is relinked about once a step, not once a request.
  const int64_t due = now_ms + list.timeout_ms;
  if (c->timer_list == which && due <= c->deadline_ms) return;
  unlink(c);
  const int64_t g = list.granularity_ms;
  c->deadline_ms = (due + g - 1) / g * g;
  c->timer_list = static_cast<uint8_t>(which);
  c->prev = list.tail;
  c->next = nullptr;
  if (list.tail)
    list.tail->next = c;
  else
    list.head = c;
  list.tail = c;
}

int64_t TimerLists::next_deadline() const {
  int64_t next = INT64_MAX;
  for (int i : {kIdle, kLinger})
    if (lists_[i].head != nullptr && lists_[i].head->deadline_ms < next) next = lists_[i].head->deadline_ms;
  return next;
}

Loop::Loop(const LoopOptions& opts, const ConnLimits& limits, ThreadStats& stats, AcceptControl& accept)
    : opts_(opts), limits_(limits), stats_(stats), accept_(accept), timers_(opts.idle_timeout_ms, opts.linger_ms) {
  int r = poller_.add(wake_fd_, kReadable, &wake_tag_);
  if (r < 0) throw std::system_error(-r, std::generic_category(), "epoll_ctl");
  conn_interest_flags_ = opts_.edge ? uint32_t{kEdge} : 0u;
}

Loop::~Loop() {
  // Runs after join(): no other thread touches this loop any more.
  for (int list : {kIdle, kLinger}) {
    while (Conn* c = timers_.head(list)) {
      unlink(c);
      close(c->fd);
      delete c;
    }
  }
  for (Conn* c : graveyard_) delete c;
  for (Conn* c : free_conns_) delete c;
  for (const Mail& m : mail_) {
    if (m.conn == nullptr && m.fd >= 0) close(m.fd);
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (spare_fd_ >= 0) close(spare_fd_);
}

void Loop::prepare() {
  if (pool_ != nullptr) conn_interest_flags_ |= kOneShot;
  if (listen_fd_ >= 0) spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void Loop::start() {
  prepare();
  thread_ = std::thread([this] { run_named(opts_.role, opts_.index, [this] { run(); }); });
}

void Loop::run_here() {
  prepare();
  run_named(opts_.role, opts_.index, [this] { run(); });
}

Reactor::Reactor() : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Reactor::~Reactor() { close(wake_fd_); }

void Reactor::stop() {
  stopping_.store(true, std::memory_order_release);
  wake();
}

void Reactor::join() {
  if (thread_.joinable()) thread_.join();
}

void Reactor::wake() {
  uint64_t one = 1;
  ssize_t r = write(wake_fd_, &one, sizeof one);
  (void)r;  // EAGAIN means a wake-up is already pending
}

void Loop::post_fd(int fd) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mail_mu_);
    was_empty = mail_.empty();
    mail_.push_back(Mail{fd, nullptr, Next::kRead});
  }
  if (was_empty) wake();  // one wake-up per batch of hand-offs
}

void Loop::post_done(Conn* c, Next next) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mail_mu_);
    was_empty = mail_.empty();
    mail_.push_back(Mail{c->fd, c, next});
  }
  if (was_empty) wake();
}

void Loop::rearm(Conn* c, Next next) {
  c->want_write = next == Next::kWrite;
  const uint32_t interest = (c->want_write ? kWritable : kReadable) | conn_interest_flags_;
  c->busy.store(false, std::memory_order_release);
  // After mod() the reactor may hand c to another worker at once.
  if (poller_.mod(c->fd, interest, c) < 0) ::shutdown(c->fd, SHUT_RDWR);
}

void Loop::assert_in_loop() const { assert(std::this_thread::get_id() == loop_thread_); }

void Loop::run() {
  loop_thread_ = std::this_thread::get_id();
  stats_.tid.store(static_cast<int>(gettid()), std::memory_order_relaxed);
  now_ms_ = monotonic_us() / 1000;
  reconcile_listener();
  FiredEvent events[kBatch];
  while (!stopping_.load(std::memory_order_acquire)) {
    int n = poller_.wait(events, kBatch, next_timeout_ms());
    // EINTR is 0; anything else (EBADF, EINVAL, EFAULT) means the loop cannot go on: it stops
    // and says so (run_named), never silently.
    if (n < 0) throw std::system_error(-n, std::generic_category(), "epoll_wait");
    now_ms_ = monotonic_us() / 1000;
    Responses::refresh();  // the Date of this batch's answers
    for (int i = 0; i < n; i++) {
      void* data = events[i].data;
      if (data == &listener_tag_) {
        on_acceptable();
      } else if (data == &wake_tag_) {
        uint64_t v;
        ssize_t r = read(wake_fd_, &v, sizeof v);
        (void)r;
        drain_mail();
        const uint64_t gen = accept_.generation.load(std::memory_order_acquire);
        if (gen != accept_generation_) {  // pause/resume/rate changed: start afresh
          accept_generation_ = gen;
          accept_blocked_until_ms_ = 0;
          bucket_.reset();
        }
        reconcile_listener();
      } else {
        on_conn(static_cast<Conn*>(data), events[i].mask);
      }
    }
    expire_timers();
    if (accept_blocked_until_ms_ != 0 && now_ms_ >= accept_blocked_until_ms_) {
      accept_blocked_until_ms_ = 0;
      reconcile_listener();
    }
    // Closed connections are reused only after the batch: a later event of this
    // batch can never point at a recycled Conn.
    for (Conn* c : graveyard_) conn_put(c);
    graveyard_.clear();
  }
}

int Loop::next_timeout_ms() const {
  int64_t next = timers_.next_deadline();
  if (accept_blocked_until_ms_ != 0 && accept_blocked_until_ms_ < next) next = accept_blocked_until_ms_;
  if (next == INT64_MAX) return -1;
  int64_t wait = next - now_ms_;
  if (wait < 0) return 0;
  return wait > INT_MAX ? INT_MAX : static_cast<int>(wait);
}

// ---- accepting -------------------------------------------------------------

void Loop::reconcile_listener() {
  if (listen_fd_ < 0) return;
  const bool want = !accept_.paused.load(std::memory_order_acquire) && accept_blocked_until_ms_ == 0;
  if (want == listener_armed_) return;
  // Removing the listener (rather than masking it) is what lets pause() leave the
  // accept queue to fill without a level-triggered spin; adding it back reports
  // connections already queued, in both trigger modes.
  if (want) {
    if (poller_.add(listen_fd_, kReadable | (opts_.edge ? uint32_t{kEdge} : 0u), &listener_tag_) == 0)
      listener_armed_ = true;
  } else {
    poller_.del(listen_fd_);
    listener_armed_ = false;
  }
}

void Loop::on_acceptable() {
  assert_in_loop();
  for (;;) {
    if (accept_.paused.load(std::memory_order_relaxed)) break;
    if (!bucket_.take(accept_, opts_.index, &accept_blocked_until_ms_)) break;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      stats_.accepted.add();
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (!targets_.empty()) {
        targets_[next_target_]->post_fd(fd);
        next_target_ = (next_target_ + 1) % targets_.size();
      } else {
        adopt(fd);
      }
      continue;
    }
    const int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      bucket_.refund();  // the token was not used
      break;
    }
    if (e == EINTR) continue;
    stats_.accept_errors[classify_accept_errno(e)].add();
    if (e == EMFILE || e == ENFILE) {
      // Out of fds: the queued connection would keep the listener readable forever.
      // Give back the spare fd, accept the connection, close it (the client sees a
      // close instead of hanging), and take the spare again.
      stats_.emfile_events.add();
      if (spare_fd_ >= 0) {
        close(spare_fd_);
        int victim = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (victim >= 0) close(victim);
        spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (victim >= 0 && spare_fd_ >= 0) continue;
      }
      accept_blocked_until_ms_ = now_ms_ + kAcceptBackoffMs;
      break;
    }
    if (e == ECONNABORTED || e == EPROTO || e == EPERM || e == ENETDOWN || e == ENOPROTOOPT || e == EHOSTDOWN ||
        e == ENONET || e == EHOSTUNREACH || e == EOPNOTSUPP || e == ENETUNREACH) {
      continue;  // that connection is gone; the next one may be fine
    }
    accept_blocked_until_ms_ = now_ms_ + kAcceptBackoffMs;  // ENOBUFS, ENOMEM, …
    break;
  }
  if (accept_blocked_until_ms_ != 0) reconcile_listener();
}

// ---- connections -----------------------------------------------------------

Conn* Loop::conn_get(int fd) {
  if (free_conns_.empty()) return new Conn(fd, limits_);
  Conn* c = free_conns_.back();
  free_conns_.pop_back();
  c->reset(fd);
  return c;
}

void Loop::conn_put(Conn* c) {
  if (free_conns_.size() < 1024)
    free_conns_.push_back(c);
  else
    delete c;
}

uint64_t Loop::open_connections() const {
  uint64_t n = 0;
  for (const ThreadStats* s : accept_.all_stats) n += s->active.get();
  return n;
}

void Loop::adopt(int fd) {
  assert_in_loop();
  // Over the server's connection cap: closed at once (the client sees EOF).
  if (accept_.max_connections != 0 && open_connections() >= accept_.max_connections) {
    close(fd);
    stats_.over_cap.add();
    return;
  }
  Conn* c = conn_get(fd);
  if (poller_.add(fd, kReadable | conn_interest_flags_, c) < 0) {
    close(fd);
    stats_.closed.add();
    graveyard_.push_back(c);
    return;
  }
  stats_.active.add();
  touch(c, kIdle);
}

void Loop::on_conn(Conn* c, uint32_t mask) {
  if (pool_ != nullptr) {
    // Workers model: EPOLLONESHOT has disarmed c; a worker owns its I/O now.
    // (The worker that last held c wrote its state before re-arming it.)
    if (!c->lingering && (!c->request_pending() || c->timer_list != 1)) touch(c, kIdle);
    c->busy.store(true, std::memory_order_relaxed);
    pool_->submit(c, mask, *this);
    return;
  }
  Next next = (mask & kWritable) && c->want_write ? c->on_writable(stats_) : c->on_readable(stats_, mask & kHangup);
  apply(c, next);
}

void Loop::apply(Conn* c, Next next) {
  switch (next) {
    case Next::kRead:
    case Next::kLinger:
      if (c->want_write) {
        c->want_write = false;
        if (poller_.mod(c->fd, kReadable | conn_interest_flags_, c) < 0) return close_conn(c);
      }
      if (next == Next::kLinger) {
        if (c->timer_list != 2) touch(c, kLinger);
      } else if (!c->request_pending() || c->timer_list != 1) {
        // A request under way keeps the deadline it had when it began: a client that
        // sends one byte at a time does not hold the connection forever.
        touch(c, kIdle);
      }
      return;
    case Next::kWrite:
      // Only write interest while output is pending: reading more would only pile
      // up answers. mod() back to readable re-reports data that arrived meanwhile.
      if (!c->want_write) {
        c->want_write = true;
        if (poller_.mod(c->fd, kWritable | conn_interest_flags_, c) < 0) return close_conn(c);
      }
      touch(c, kIdle);
      return;
    case Next::kClose:
      return close_conn(c);
  }
}

void Loop::close_conn(Conn* c) {
  assert_in_loop();
  unlink(c);
  // Out of the epoll set first: close() alone removes it only when no other fd refers to the
  // socket, and another process may hold one (a fork's child until it execs, as in a Node
  // program that spawns). Left in, the socket's next bytes would bring an event carrying this
  // Conn*, recycled by then (and level-triggered, bring it on every wait: a spinning loop).
  poller_.del(c->fd);
  close(c->fd);
  c->fd = -1;
  stats_.closed.add();
  stats_.active.sub();
  graveyard_.push_back(c);
}

void Loop::drain_mail() {
  {
    std::lock_guard<std::mutex> lock(mail_mu_);
    mail_scratch_.swap(mail_);
  }
  for (const Mail& m : mail_scratch_) {
    if (m.conn == nullptr) {
      adopt(m.fd);  // acceptor model hand-off
    } else if (m.next == Next::kClose) {
      close_conn(m.conn);  // workers model: a worker is done with it
    } else if (m.next == Next::kLinger && m.conn->timer_list != 2) {
      touch(m.conn, kLinger);
    }
  }
  mail_scratch_.clear();
}

// ---- timers (TimerLists, above) -------------------------------------------

void Loop::expire_timers() {
  assert_in_loop();
  for (Conn* c; (c = timers_.head(kLinger)) != nullptr && c->deadline_ms <= now_ms_;) {
    if (c->busy.load(std::memory_order_acquire)) {
      touch(c, kLinger);
      continue;
    }
    if (pool_ != nullptr) {  // a worker may re-arm it any moment: let a worker see EOF
      touch(c, kLinger);
      ::shutdown(c->fd, SHUT_RDWR);
      continue;
    }
    close_conn(c);
  }
  for (Conn* c; (c = timers_.head(kIdle)) != nullptr && c->deadline_ms <= now_ms_;) {
    if (pool_ != nullptr) {
      // Never close under a worker's feet: shut the socket down so the next event
      // hands it to a worker, which sees EOF and gives it back to us to close.
      touch(c, kIdle);
      if (!c->busy.load(std::memory_order_acquire) && !c->timed_out) {
        c->timed_out = true;
        stats_.idle_timeouts.add();
        ::shutdown(c->fd, SHUT_RDWR);
      }
      continue;
    }
    stats_.idle_timeouts.add();
    close_conn(c);
  }
}

}  // namespace tcplab
