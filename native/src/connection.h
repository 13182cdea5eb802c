// One client connection: buffers, framing, and what to do after I/O. Knows
// nothing of epoll: the owning loop maps the returned Next to interest changes.
//
// Thread safety: a Conn is touched by one thread at a time (its loop, or in the
// workers model the worker that holds it while EPOLLONESHOT keeps it disarmed).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "http.h"
#include "stats.h"

namespace tcplab {

// Does a request's simulated work (ConnLimits::work_us), on the calling thread.
void simulate_work(int64_t us, bool sleep);

struct ConnLimits {
  size_t max_header_bytes = RequestFramer::kDefaultMaxHeaderBytes;
  uint64_t max_body_bytes = RequestFramer::kDefaultMaxBodyBytes;
  size_t in_cap = 16384;              // input buffer: at least max_header_bytes + 1
  size_t out_cap = 16384;             // output buffer: at least Responses::max_size()
  size_t linger_max_bytes = 1 << 20;  // discarded after we sent FIN, then we close
  // Against slowloris: a request head must be whole within header_timeout_ms of its first
  // byte, a body within body_timeout_ms of its head (0: no limit). Checked when bytes
  // arrive; the idle timer does not restart while a request is incomplete.
  int64_t header_timeout_ms = 10000;
  int64_t body_timeout_ms = 30000;
  // Simulated work per request, done by the thread that answers it before it answers:
  // work_us of CPU (a spin on the thread's CPU clock) or of sleep. 0: none.
  int64_t work_us = 0;
  bool work_sleep = false;
};

// What the loop should do with the connection next.
enum class Next : uint8_t {
  kRead,    // wait until readable
  kWrite,   // output pending: wait until writable
  kLinger,  // we sent FIN after the last answer: read and discard until EOF, briefly
  kClose,   // close it now
};

struct Conn {
  Conn(int fd, const ConnLimits& limits);
  ~Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Called when the socket is readable / writable. hangup: the poller reported the
  // peer's FIN; then a short read does not prove the queue is drained (the EOF
  // behind the data raises no new edge), so reading goes on to EOF or EAGAIN.
  Next on_readable(ThreadStats& st, bool hangup = false);
  Next on_writable(ThreadStats& st);

  // Frames buffered input and appends the answers to the output buffer, as far as
  // the output buffer has room. Returns true when input was left for lack of room.
  // Pure: no system calls (the fuzz target drives it directly).
  bool process_input(ThreadStats& st);

  // Resets for a new socket (conns are pooled per loop).
  void reset(int new_fd);

  // A request has begun and not ended (part of a head, or a body being read).
  bool request_pending() const { return in_len > 0 || framer.in_body(); }

  int fd;
  const ConnLimits& limits;

  // Intrusive timer list (owned by the loop): ordered by deadline.
  Conn* prev = nullptr;
  Conn* next = nullptr;
  int64_t deadline_ms = 0;
  uint8_t timer_list = 0;

  bool lingering = false;     // FIN sent, discarding input
  bool want_write = false;    // the loop has write interest registered
  bool read_stalled = false;  // stopped reading because output was full
  bool close_after_flush = false;
  bool timed_out = false;         // workers model: the reactor asked for a close
  std::atomic<bool> busy{false};  // workers model: a worker holds it (disarmed)

  size_t in_len = 0;
  size_t out_off = 0;
  size_t out_len = 0;
  size_t lingered = 0;
  uint8_t phase = 0;             // 0 between requests, 1 a head under way, 2 a body under way
  int64_t phase_started_ms = 0;  // when the current phase began (CLOCK_MONOTONIC_COARSE)
  RequestFramer framer;
  std::unique_ptr<char[]> in;
  std::unique_ptr<char[]> out;

  // The steps on_readable/on_writable are made of; the blocking designs (blocking.cc) drive
  // them on a blocking socket.
  // Ends the connection with 408 when the current head or body is past its deadline.
  void check_deadlines(ThreadStats& st);
  // Writes pending output. Returns false on a fatal socket error.
  bool flush(ThreadStats& st);
  // After a flush: kRead, kWrite, or (close_after_flush) FIN sent and kLinger.
  Next after_flush();
  // Reads and drops input after our FIN: kClose at EOF or past linger_max_bytes, kLinger on EAGAIN.
  Next linger_read();
};

}  // namespace tcplab
