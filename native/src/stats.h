// Per-thread counters. Each ThreadStats has exactly one writer thread, so an
// increment is a relaxed load + store (no lock prefix on the hot path); any thread
// may read them at any time (stats() from JS) and sees a recent value.
#pragma once
#include <atomic>
#include <cerrno>
#include <cstdint>

namespace tcplab {

class Counter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }
  // For a counter with several writers (the blocking designs' connection threads).
  void add_atomic(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  void sub_atomic(uint64_t n = 1) { v_.fetch_sub(n, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// accept() errors are counted by errno; these are the ones a busy server meets.
enum AcceptErr : int {
  kEMFILE,
  kENFILE,
  kENOBUFS,
  kENOMEM,
  kECONNABORTED,
  kEPERM,
  kEPROTO,
  kOtherErr,
  kAcceptErrKinds
};
inline const char* const kAcceptErrNames[kAcceptErrKinds] = {"EMFILE",       "ENFILE", "ENOBUFS", "ENOMEM",
                                                             "ECONNABORTED", "EPERM",  "EPROTO",  "other"};

inline AcceptErr classify_accept_errno(int e) {
  switch (e) {
    case EMFILE:
      return kEMFILE;
    case ENFILE:
      return kENFILE;
    case ENOBUFS:
      return kENOBUFS;
    case ENOMEM:
      return kENOMEM;
    case ECONNABORTED:
      return kECONNABORTED;
    case EPERM:
      return kEPERM;
    case EPROTO:
      return kEPROTO;
    default:
      return kOtherErr;
  }
}

struct alignas(64) ThreadStats {
  Counter accepted;  // connections this thread accepted
  Counter closed;    // connections this thread closed
  Counter active;    // connections this thread owns now
  Counter requests;  // complete requests answered with 200
  Counter bytes_in;
  Counter bytes_out;
  Counter status400;
  Counter status413;
  Counter status431;
  Counter status501;
  Counter status505;
  Counter idle_timeouts;    // connections closed by the idle timer
  Counter header_timeouts;  // 408: a request head not whole within the header deadline
  Counter body_timeouts;    // 408: a body not whole within the body deadline
  Counter over_cap;         // connections closed at once: the server had max_connections open
  Counter emfile_events;    // EMFILE/ENFILE met and survived with the spare fd
  Counter accept_errors[kAcceptErrKinds];
  // The blocking designs (blocking.h):
  Counter wakeups;         // returns from a wait for the listener (accept() or epoll_wait()) with something to do
  Counter futile_wakeups;  // of them, an accept() that found the queue empty (EAGAIN: another waiter took it)
  Counter spawned;         // threads started for one connection each (model "thread")
  Counter live;            // of them, running now
  // The thread's id (gettid), set when it starts: /proc/self/task/<tid> has its context
  // switches, which show the wake-ups the kernel absorbed (a woken epoll waiter that finds
  // nothing ready goes back to sleep without returning).
  std::atomic<int> tid{0};
};

// Every Counter of ThreadStats but accept_errors (an array, folded beside them).
inline constexpr Counter ThreadStats::*kCounterFields[] = {
    &ThreadStats::accepted,        &ThreadStats::closed,         &ThreadStats::active,    &ThreadStats::requests,
    &ThreadStats::bytes_in,        &ThreadStats::bytes_out,      &ThreadStats::status400, &ThreadStats::status413,
    &ThreadStats::status431,       &ThreadStats::status501,      &ThreadStats::status505, &ThreadStats::idle_timeouts,
    &ThreadStats::header_timeouts, &ThreadStats::body_timeouts,  &ThreadStats::over_cap,  &ThreadStats::emfile_events,
    &ThreadStats::wakeups,         &ThreadStats::futile_wakeups, &ThreadStats::spawned,   &ThreadStats::live};

// Adds what `local` (one writer) counted since `seen` to `shared` (many writers, so atomic
// adds), then moves `seen` up to `local`. Unsigned wrap-around makes a fall (active) add up too.
inline void fold(const ThreadStats& local, ThreadStats& seen, ThreadStats& shared) {
  auto one = [](const Counter& l, Counter& s, Counter& to) {
    const uint64_t d = l.get() - s.get();
    if (d == 0) return;
    to.add_atomic(d);
    s.add(d);
  };
  for (auto f : kCounterFields) one(local.*f, seen.*f, shared.*f);
  for (int k = 0; k < kAcceptErrKinds; k++) one(local.accept_errors[k], seen.accept_errors[k], shared.accept_errors[k]);
}

}  // namespace tcplab
