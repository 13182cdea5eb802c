// Poller: the one seam between the reactor and the kernel's readiness API.
// epoll today (poller_epoll.cc); a kqueue backend would implement the same class.
// Nothing outside poller_epoll.cc sees an EPOLL* constant.
//
// Thread safety: add/mod/del may be called from any thread (the kernel serialises
// them); wait() is called by the owning loop thread only.
#pragma once
#include <cstdint>

namespace tcplab {

// Readiness bits reported by wait() and requested by add()/mod().
enum : uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kHangup = 1u << 2,  // reported only: the peer closed its side (FIN) or the socket hung up
};

// How an interest is armed.
enum : uint32_t {
  kEdge = 1u << 8,     // report a change once (edge-triggered) instead of while ready
  kOneShot = 1u << 9,  // disarm after one report; mod() re-arms (workers model)
};

struct FiredEvent {
  void* data;
  uint32_t mask;  // kReadable|kWritable; errors and hang-ups are reported as both, plus kHangup
};

class Poller {
 public:
  Poller();  // throws std::system_error
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Each returns 0 or -errno.
  int add(int fd, uint32_t interest, void* data);
  int mod(int fd, uint32_t interest, void* data);
  int del(int fd);

  // Waits up to timeout_ms (-1: forever). Returns the number of events written to
  // out (0 on timeout or EINTR), or -errno.
  int wait(FiredEvent* out, int max, int timeout_ms);

  int fd() const { return fd_; }

 private:
  int fd_;
  struct Scratch;  // the backend's own event array
  Scratch* scratch_;
};

}  // namespace tcplab
