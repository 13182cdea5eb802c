// The blocking designs: see blocking.h.
#include "blocking.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <system_error>

#include "forked.h"

namespace tcplab {

namespace {

// How long fork's acceptor waits for a connection before it reaps exited children, ms.
constexpr int kReapTickMs = 100;

constexpr int kWakeSignal = SIGURG;
constexpr size_t kConnStack = 256 * 1024;
constexpr int64_t kNever = INT64_MAX;

void on_wake_signal(int) {}

// The handler that makes a blocked accept()/epoll_wait() return EINTR; installed once.
void install_wake_signal() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = on_wake_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the interrupted call returns EINTR
    sigaction(kWakeSignal, &sa, nullptr);
  });
}

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void set_blocking(int fd, bool blocking) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, blocking ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK));
}

}  // namespace

BlockingServer::BlockingServer(const BlockingConfig& cfg, const ConnLimits& limits, std::vector<int> listeners,
                               std::vector<ThreadStats*> stats)
    : cfg_(cfg), limits_(limits), listeners_(std::move(listeners)), stats_(std::move(stats)) {
  const bool polled = cfg_.share == Share::kEpoll || cfg_.share == Share::kExclusive;
  for (int fd : listeners_) set_blocking(fd, !polled || cfg_.kind != BlockingConfig::kPrethread);
  const int shared_entries = cfg_.kind == BlockingConfig::kPrefork ? cfg_.waiters
                             : cfg_.kind == BlockingConfig::kFork  ? 1
                                                                   : 0;
  if (shared_entries > 0) {
    // Controls and the children's counters, shared with the children across fork().
    shared_ = std::make_unique<SharedMapping<Shared>>(shared_entries);
    ctl_ = &shared_->head()->ctl;
    shared_views_ = shared_->stats();
    // prefork: each child's own entry; fork: the acceptor's (given), then the children's.
    if (cfg_.kind == BlockingConfig::kPrefork) stats_ = shared_views_;
    if (cfg_.kind == BlockingConfig::kFork) stats_.push_back(shared_views_[0]);
  }
}

ThreadStats* BlockingServer::shared_stats(int i) { return shared_views_[static_cast<size_t>(i)]; }

BlockingServer::~BlockingServer() {
  stop();
  close_fds();
}

void BlockingServer::start() {
  install_wake_signal();
  const bool pool = cfg_.kind == BlockingConfig::kPrethread || cfg_.kind == BlockingConfig::kPrefork;
  const int n = pool ? cfg_.waiters : 1;
  const bool polled =
      cfg_.kind == BlockingConfig::kPrethread && (cfg_.share == Share::kEpoll || cfg_.share == Share::kExclusive);
  for (int i = 0; i < n; i++) {
    auto w = std::make_unique<Waiter>();
    w->listen_fd = listeners_[cfg_.share == Share::kReusePort && pool ? i : 0];
    if (shared_) w->in_wait = &shared_->head()->in_wait[i];
    w->stats = stats_[pool ? i : 0];
    if (polled) {
      w->epfd = epoll_create1(EPOLL_CLOEXEC);
      if (w->epfd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
      epoll_event ev{};
      ev.events = EPOLLIN | (cfg_.share == Share::kExclusive ? static_cast<uint32_t>(EPOLLEXCLUSIVE) : 0u);
      if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listen_fd, &ev) < 0)
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
    waiters_.push_back(std::move(w));
  }
  started_ = true;
  parent_ = getpid();  // the children's (prefork, fork): they die when it does
  if (cfg_.kind == BlockingConfig::kPrefork) {
    for (auto& w : waiters_) {
      const pid_t pid = fork();
      if (pid < 0) {
        const int e = errno;
        stop();
        throw std::system_error(e, std::generic_category(), "fork");
      }
      if (pid == 0) child_main(*w);
      w->pid = pid;
    }
    return;
  }
  for (auto& w : waiters_) {
    Waiter* p = w.get();
    try {
      p->thread = std::thread([this, p] { wait_loop(*p); });
    } catch (const std::system_error&) {
      stop();
      throw;
    }
  }
}

void BlockingServer::interrupt_waiters() {
  // A signal sent just before a waiter enters its call is lost, so repeat while any
  // waiter still says it waits (each checks paused_/stopping_ after saying so).
  for (int round = 0; round < 5000; round++) {
    bool any = false;
    for (auto& w : waiters_) {
      if (w->in_wait->load(std::memory_order_acquire)) {
        any = true;
        if (w->pid > 0)
          kill(w->pid, kWakeSignal);
        else
          pthread_kill(w->handle, kWakeSignal);
      }
    }
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void BlockingServer::pause() {
  ctl_->paused.store(true, std::memory_order_release);
  interrupt_waiters();
}

void BlockingServer::resume() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    ctl_->paused.store(false, std::memory_order_release);
  }
  cv_.notify_all();
}

void BlockingServer::set_accept_rate(uint64_t per_second) {
  ctl_->rate.store(per_second, std::memory_order_relaxed);
  cv_.notify_all();
}

void BlockingServer::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ctl_->stopping.store(true, std::memory_order_release);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);  // blocked reads and writes return
  }
  cv_.notify_all();
  // prefork: the children go at once (SIGKILL closes their connections), reaped by pid.
  for (auto& w : waiters_) {
    if (w->pid > 0) {
      kill_and_reap(w->pid);
      w->pid = 0;
      w->in_wait->store(false);
    }
  }
  interrupt_waiters();
  for (auto& w : waiters_)
    if (w->thread.joinable()) w->thread.join();
  // fork: no child is made any more; those still serving go now.
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (pid_t pid : children_) kill(pid, SIGKILL);
  }
  reap_children(true);
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [this] { return conn_threads_ == 0; });
  lk.unlock();
  // Nothing runs any more: the fds go now (the counters stay, for stats() after close()).
  close_fds();
}

void BlockingServer::close_fds() {
  for (auto& w : waiters_) {
    if (w->epfd >= 0) close(w->epfd);
    w->epfd = -1;
  }
  for (int& fd : listeners_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

int BlockingServer::accept_one(Waiter& w) {
  ThreadStats& st = *w.stats;
  if (ctl_->paused.load(std::memory_order_acquire) && is_child_) {
    // A child's parent cannot notify it: it looks again every 2 ms.
    while (ctl_->paused.load() && !ctl_->stopping.load()) usleep(2000);
    return -1;
  }
  if (ctl_->paused.load(std::memory_order_acquire)) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return !ctl_->paused.load() || ctl_->stopping.load(); });
    return -1;
  }
  // The accept rate, spread evenly: each waiter accepts at most every waiters/rate seconds.
  const uint64_t rate = ctl_->rate.load(std::memory_order_relaxed);
  if (rate > 0 && now_us() < w.next_accept_us) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_for(lk, std::chrono::microseconds(w.next_accept_us - now_us()), [this] { return ctl_->stopping.load(); });
    return -1;
  }
  w.in_wait->store(true, std::memory_order_release);
  if (ctl_->paused.load(std::memory_order_acquire) || ctl_->stopping.load(std::memory_order_acquire)) {
    w.in_wait->store(false, std::memory_order_release);
    return -1;
  }
  int fd;
  if (w.epfd >= 0) {
    epoll_event ev;
    const int n = epoll_wait(w.epfd, &ev, 1, -1);
    w.in_wait->store(false, std::memory_order_release);
    if (n <= 0) return -1;  // EINTR: paused or stopping
    st.wakeups.add();
    fd = accept4(w.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      st.futile_wakeups.add();  // another waiter took it
      return -1;
    }
  } else {
    if (cfg_.kind == BlockingConfig::kFork) {
      // fork's acceptor waits at most kReapTickMs, so that exited children are reaped in time
      // (it is the listener's only waiter: a ready listener is its connection).
      pollfd p{w.listen_fd, POLLIN, 0};
      if (poll(&p, 1, kReapTickMs) <= 0) {
        w.in_wait->store(false, std::memory_order_release);
        return -1;  // the reap tick, or EINTR (paused or stopping)
      }
    }
    fd = accept4(w.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    const int e = errno;
    w.in_wait->store(false, std::memory_order_release);
    if (fd < 0 && e == EINTR) return -1;
    st.wakeups.add();
    errno = e;
  }
  if (fd < 0) {
    const int e = errno;
    st.accept_errors[classify_accept_errno(e)].add();
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
      if (e == EMFILE || e == ENFILE) st.emfile_events.add();
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(100), [this] { return ctl_->stopping.load(); });
    }
    return -1;
  }
  st.accepted.add();
  if (rate > 0) w.next_accept_us = now_us() + static_cast<int64_t>(1000000ull * waiters_.size() / rate);
  return fd;
}

void BlockingServer::wait_loop(Waiter& w) {
  w.handle = pthread_self();
  w.stats->tid.store(static_cast<int>(gettid()), std::memory_order_relaxed);
  // Only this thread's waits are interrupted by the wake signal.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, kWakeSignal);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  const bool forks = cfg_.kind == BlockingConfig::kFork;
  while (!ctl_->stopping.load(std::memory_order_acquire)) {
    const int fd = accept_one(w);
    if (forks) reap_children(false);
    if (fd < 0) continue;
    uint64_t open = 0;
    for (const ThreadStats* s : stats_) open += s->active.get();
    if (cfg_.max_connections != 0 && open >= cfg_.max_connections) {
      w.stats->over_cap.add();
      close(fd);
      continue;
    }
    if (cfg_.kind == BlockingConfig::kThread) {
      spawn_conn_thread(fd);
    } else if (forks) {
      spawn_conn_process(fd);
    } else {
      serve(fd, *w.stats, nullptr);
    }
  }
}

void BlockingServer::after_fork_in_child() {
  is_child_ = true;
  // Another thread of the parent may have held the lock at the fork: this process starts
  // with its own (no thread of the parent's runs here).
  new (&mu_) std::mutex();
  new (&cv_) std::condition_variable();
  open_fds_.clear();
  children_.clear();
  die_with_parent(parent_);
}

void BlockingServer::child_main(Waiter& w) {
  after_fork_in_child();
  close_all_fds_except({w.listen_fd});  // only this child's listener (forked.h)
  wait_loop(w);
  _exit(0);
}

void BlockingServer::spawn_conn_process(int fd) {
  ThreadStats& st = *stats_[1];
  st.spawned.add_atomic();
  st.live.add_atomic();
  const pid_t pid = fork();
  if (pid == 0) conn_process_main(fd);
  close(fd);  // the child's copy serves it
  if (pid < 0) {
    st.live.sub_atomic();
    stats_[0]->accept_errors[kOtherErr].add();
    return;
  }
  std::lock_guard<std::mutex> lk(mu_);
  children_.insert(pid);
}

void BlockingServer::conn_process_main(int fd) {
  after_fork_in_child();
  close_all_fds_except({fd});  // only the connection: not the listener (forked.h)
  ThreadStats mine;            // this connection's counts, folded into the shared entry
  serve(fd, mine, stats_[1]);
  stats_[1]->live.sub_atomic();
  _exit(0);
}

void BlockingServer::reap_children(bool all) {
  // A child says it is done (live) just before it exits: reap only while some have said so
  // and are not reaped yet, and look at every child once a second whatever they said (one
  // killed by a signal never said so; it is counted out here).
  const ThreadStats* st = stats_.size() > 1 ? stats_[1] : nullptr;
  if (cfg_.kind != BlockingConfig::kFork || st == nullptr) return;
  const int64_t now = now_ms();
  const bool full = all || now >= next_full_reap_ms_;
  if (!full && st->spawned.get() - st->live.get() <= reaped_) return;
  if (full) next_full_reap_ms_ = now + 1000;
  std::lock_guard<std::mutex> lk(mu_);
  for (auto it = children_.begin(); it != children_.end();) {
    int status = 0;
    pid_t r;
    while ((r = waitpid(*it, &status, all ? 0 : WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r == 0) {
      ++it;
      continue;
    }
    // One that exited said so; one killed by a signal (stop()'s SIGKILL, or anyone's) did not.
    if (r == *it && WIFSIGNALED(status) && stats_[1]->live.get() > 0) stats_[1]->live.sub_atomic();
    reaped_++;
    it = children_.erase(it);
  }
}

void BlockingServer::spawn_conn_thread(int fd) {
  ThreadStats& st = *stats_[1];
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (ctl_->stopping.load()) {
      close(fd);
      return;
    }
    conn_threads_++;
  }
  st.spawned.add_atomic();
  st.live.add_atomic();
  struct Job {
    BlockingServer* self;
    int fd;
  };
  auto* job = new Job{this, fd};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kConnStack);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // The wake signal stays blocked in connection threads (they inherit this mask).
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, kWakeSignal);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  pthread_t t;
  const int rc = pthread_create(
      &t, &attr,
      [](void* arg) -> void* {
        auto* j = static_cast<Job*>(arg);
        BlockingServer* self = j->self;
        const int cfd = j->fd;
        delete j;
        ThreadStats mine;  // this connection's counts, folded into the shared entry
        self->serve(cfd, mine, self->stats_[1]);
        self->stats_[1]->live.sub_atomic();
        std::lock_guard<std::mutex> lk(self->mu_);
        self->conn_threads_--;
        self->cv_.notify_all();  // under the lock: stop() cannot free `self` before this returns
        return nullptr;
      },
      job);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete job;
    close(fd);
    stats_[0]->accept_errors[kOtherErr].add();
    st.live.sub_atomic();
    std::lock_guard<std::mutex> lk(mu_);
    conn_threads_--;
    cv_.notify_all();
  }
}

bool BlockingServer::track(int fd) {
  std::lock_guard<std::mutex> lk(mu_);
  if (ctl_->stopping.load()) return false;
  open_fds_.insert(fd);
  return true;
}

void BlockingServer::untrack(int fd) {
  std::lock_guard<std::mutex> lk(mu_);
  open_fds_.erase(fd);
}

void BlockingServer::serve(int fd, ThreadStats& st, ThreadStats* fold_to) {
  // fold_to (model thread): st is this connection thread's own; what it counts is added to
  // the shared entry after every batch, so /stats sees it while the connection lasts.
  ThreadStats seen;
  auto publish = [&] {
    if (fold_to) fold(st, seen, *fold_to);
  };
  if (!track(fd)) {
    close(fd);
    return;
  }
  st.active.add();
  publish();
  // The reactor's connection (buffers, framing, answers, deadlines, linger), driven here with
  // blocking calls: one read, then every whole request answered and written in one go.
  Conn c(fd, limits_);
  int64_t timeout_set = -1;
  auto set_timeout = [&](int64_t ms) {
    if (ms == timeout_set) return;
    timeout_set = ms;
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  };
  int64_t idle_since = 0;
  for (;;) {
    bool ok = true;
    Responses::refresh();  // the Date of this read's answers
    // Counted, then written (publish() before each flush): a client that has its answer finds
    // it in /stats, as on the reactor, whose threads count before they write.
    while (ok && c.process_input(st)) {  // output full: write, then frame on
      publish();
      ok = c.flush(st);
    }
    // The phase this batch leaves (a head or body under way, or none), and a 408 once a
    // deadline has passed: as the reactor does after each read.
    if (ok) c.check_deadlines(st);
    publish();
    if (!ok || !c.flush(st)) break;
    if (c.close_after_flush) {
      // FIN right after the last answer; what the client still sends is read and dropped
      // (until EOF, or the linger time), so that closing does not turn into an RST.
      c.after_flush();
      set_timeout(std::max<int64_t>(1, cfg_.linger_ms));
      c.linger_read();
      break;
    }
    // The read's deadline: the idle timeout, counted from the end of the last request (it
    // does not restart on the bytes of an incomplete one), or the header or body deadline
    // of the request under way (check_deadlines keeps its phase), whichever comes first.
    const int64_t now = now_ms();
    if (!c.request_pending()) idle_since = now;
    const int64_t phase_limit = c.phase == 1 ? limits_.header_timeout_ms : c.phase == 2 ? limits_.body_timeout_ms : 0;
    const int64_t idle_deadline = cfg_.idle_timeout_ms > 0 ? idle_since + cfg_.idle_timeout_ms : kNever;
    const int64_t phase_deadline = phase_limit > 0 ? c.phase_started_ms + phase_limit : kNever;
    const int64_t deadline = std::min(idle_deadline, phase_deadline);
    set_timeout(deadline == kNever ? 0 : std::max<int64_t>(1, deadline - now));
    const ssize_t n = ::recv(fd, c.in.get() + c.in_len, limits_.in_cap - c.in_len, 0);
    if (n > 0) {
      st.bytes_in.add(static_cast<uint64_t>(n));
      c.in_len += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR && !ctl_->stopping.load()) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.request_pending() || idle_deadline < phase_deadline) {
        st.idle_timeouts.add();
        break;
      }
      continue;  // past the head's or body's deadline: check_deadlines answers 408 above
    }
    break;  // EOF, a reset, or stopping
  }
  // Counted and published, then closed: a client that sees the close finds it (and the idle
  // timeout or deadline behind it) in /stats, as with an answer. A forked child's counters
  // reach its parent only through publish() (seen racing as idleTimeouts 0 after the close).
  untrack(fd);
  st.closed.add();
  st.active.sub();
  publish();
  close(fd);
}

}  // namespace tcplab
