// Connection I/O: read, frame, answer, write; see connection.h.
#include "connection.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace tcplab {

namespace {
// Room one more answer needs in the output buffer; computed once at load time.
const size_t kMaxAnswer = Responses::max_size() + Responses::continue_100().size();
}  // namespace

Conn::Conn(int fd_, const ConnLimits& limits_)
    : fd(fd_),
      limits(limits_),
      framer(limits_.max_header_bytes, limits_.max_body_bytes),
      in(new char[limits_.in_cap]),
      out(new char[limits_.out_cap]) {}

void Conn::reset(int new_fd) {
  fd = new_fd;
  prev = next = nullptr;
  deadline_ms = 0;
  timer_list = 0;
  lingering = want_write = read_stalled = close_after_flush = timed_out = false;
  busy.store(false, std::memory_order_relaxed);
  in_len = out_off = out_len = lingered = 0;
  phase = 0;
  phase_started_ms = 0;
  framer = RequestFramer(limits.max_header_bytes, limits.max_body_bytes);
}

void simulate_work(int64_t us, bool sleep) {
  if (us <= 0) return;
  if (sleep) {
    timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>((us % 1000000) * 1000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return;
  }
  // CPU time, not wall time: a preempted spin still costs the thread `us` of CPU.
  timespec t0, t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  const int64_t start = static_cast<int64_t>(t0.tv_sec) * 1000000 + t0.tv_nsec / 1000;
  do {
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  } while (static_cast<int64_t>(t.tv_sec) * 1000000 + t.tv_nsec / 1000 - start < us);
}

// The Date its answers carry is the thread's, which the caller refreshes once a batch
// (Responses::refresh: after each wait of a loop, before each job of a worker).
bool Conn::process_input(ThreadStats& st) {
  size_t off = 0;
  bool stalled = false;
  while (!close_after_flush && off < in_len) {
    if (limits.out_cap - out_len < kMaxAnswer) {
      stalled = true;
      break;
    }
    Frame f = framer.next(in.get() + off, in_len - off);
    off += f.consumed;
    if (f.continue_100) {
      const std::string_view c = Responses::continue_100();
      std::memcpy(out.get() + out_len, c.data(), c.size());
      out_len += c.size();
    }
    if (f.kind == Frame::kRequest) {
      if (limits.work_us > 0) simulate_work(limits.work_us, limits.work_sleep);
      phase = 0;  // the next request's deadline starts with its first byte
      std::string_view r = Responses::ok(f.keep_alive, f.head);
      std::memcpy(out.get() + out_len, r.data(), r.size());
      out_len += r.size();
      st.requests.add();
      if (!f.keep_alive) close_after_flush = true;
    } else if (f.kind == Frame::kError) {
      std::string_view r = Responses::error(f.status);
      std::memcpy(out.get() + out_len, r.data(), r.size());
      out_len += r.size();
      switch (f.status) {
        case 413:
          st.status413.add();
          break;
        case 431:
          st.status431.add();
          break;
        case 501:
          st.status501.add();
          break;
        case 505:
          st.status505.add();
          break;
        default:
          st.status400.add();
          break;
      }
      close_after_flush = true;
    } else if (f.consumed == 0) {
      break;  // need more bytes
    }
  }
  if (close_after_flush) {
    in_len = 0;  // whatever follows the last answer is never read
  } else if (off != 0) {
    in_len -= off;
    if (in_len != 0) std::memmove(in.get(), in.get() + off, in_len);
  }
  return stalled;
}

bool Conn::flush(ThreadStats& st) {
  while (out_off < out_len) {
    ssize_t n = ::send(fd, out.get() + out_off, out_len - out_off, MSG_NOSIGNAL);
    if (n > 0) {
      st.bytes_out.add(static_cast<uint64_t>(n));
      out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  out_off = out_len = 0;
  return true;
}

Next Conn::after_flush() {
  if (out_len != 0) return Next::kWrite;
  if (close_after_flush) {
    // We close first: FIN right after the last answer. The socket stays open to read
    // and discard what the client still sends; closing with unread input would send
    // RST and could destroy the answer in the client's receive queue.
    ::shutdown(fd, SHUT_WR);
    lingering = true;
    return Next::kLinger;
  }
  return Next::kRead;
}

Next Conn::linger_read() {
  for (;;) {
    ssize_t n = ::recv(fd, in.get(), limits.in_cap, 0);
    if (n > 0) {
      lingered += static_cast<size_t>(n);
      if (lingered > limits.linger_max_bytes) return Next::kClose;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Next::kLinger;
    return Next::kClose;  // EOF or error
  }
}

Next Conn::on_readable(ThreadStats& st, bool hangup) {
  if (lingering) return linger_read();
  bool drained = false;
  bool peer_closed = false;
  for (;;) {
    const bool stalled = process_input(st);
    if (close_after_flush) break;
    if (stalled) {
      if (!flush(st)) return Next::kClose;
      if (out_len != 0) {
        read_stalled = true;  // resume from on_writable: no new edge will come
        return Next::kWrite;
      }
      continue;
    }
    // A short read proves the receive queue was empty: a later arrival raises a new
    // edge, so the extra recv() that would return EAGAIN is skipped (one syscall
    // per request saved). Not so when the FIN is already here (hangup).
    if (drained && !hangup) break;
    const size_t space = limits.in_cap - in_len;  // > 0: a partial head is < max_header_bytes
    ssize_t n = ::recv(fd, in.get() + in_len, space, 0);
    if (n > 0) {
      st.bytes_in.add(static_cast<uint64_t>(n));
      in_len += static_cast<size_t>(n);
      drained = static_cast<size_t>(n) < space;
      continue;
    }
    if (n == 0) {
      peer_closed = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return Next::kClose;
  }
  check_deadlines(st);
  if (!flush(st)) return Next::kClose;
  if (peer_closed) {
    // The peer has sent all it will (a FIN: it may still read). Its answers not yet sent (the
    // send buffer full) go first; then FIN and close, as after "Connection: close".
    if (out_len == 0) return Next::kClose;
    close_after_flush = true;
    return Next::kWrite;
  }
  return after_flush();
}

namespace {
int64_t coarse_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // vDSO, a few ns
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
}  // namespace

void Conn::check_deadlines(ThreadStats& st) {
  if (close_after_flush) return;
  const uint8_t now_phase = framer.in_body() ? 2 : (in_len > 0 ? 1 : 0);
  if (now_phase == 0) {
    phase = 0;
    return;
  }
  const int64_t now = coarse_ms();
  if (now_phase != phase) {
    phase = now_phase;
    phase_started_ms = now;
    return;
  }
  const int64_t limit = phase == 1 ? limits.header_timeout_ms : limits.body_timeout_ms;
  if (limit <= 0 || now - phase_started_ms <= limit) return;
  (phase == 1 ? st.header_timeouts : st.body_timeouts).add();
  Responses::refresh();
  const std::string_view r = Responses::error(408);
  if (limits.out_cap - out_len >= r.size()) {
    std::memcpy(out.get() + out_len, r.data(), r.size());
    out_len += r.size();
  }
  close_after_flush = true;
  in_len = 0;
}

Next Conn::on_writable(ThreadStats& st) {
  if (lingering) return linger_read();
  if (!flush(st)) return Next::kClose;
  if (out_len != 0) return Next::kWrite;
  if (read_stalled && !close_after_flush) {
    read_stalled = false;
    return on_readable(st);
  }
  return after_flush();
}

}  // namespace tcplab
