// epoll backend of Poller.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "poller.h"

namespace tcplab {

namespace {
constexpr int kMaxBatch = 512;

uint32_t to_epoll(uint32_t interest) {
  uint32_t ev = 0;
  if (interest & kReadable) ev |= EPOLLIN | EPOLLRDHUP;
  if (interest & kWritable) ev |= EPOLLOUT;
  if (interest & kEdge) ev |= EPOLLET;
  if (interest & kOneShot) ev |= EPOLLONESHOT;
  return ev;
}
}  // namespace

struct Poller::Scratch {
  epoll_event events[kMaxBatch];
};

Poller::Poller() : fd_(epoll_create1(EPOLL_CLOEXEC)), scratch_(new Scratch) {
  if (fd_ < 0) {
    delete scratch_;
    throw std::system_error(errno, std::generic_category(), "epoll_create1");
  }
}

Poller::~Poller() {
  close(fd_);
  delete scratch_;
}

int Poller::add(int fd, uint32_t interest, void* data) {
  epoll_event ev{};
  ev.events = to_epoll(interest);
  ev.data.ptr = data;
  return epoll_ctl(fd_, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int Poller::mod(int fd, uint32_t interest, void* data) {
  epoll_event ev{};
  ev.events = to_epoll(interest);
  ev.data.ptr = data;
  return epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

int Poller::del(int fd) { return epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr) == 0 ? 0 : -errno; }

int Poller::wait(FiredEvent* out, int max, int timeout_ms) {
  if (max > kMaxBatch) max = kMaxBatch;
  int n = epoll_wait(fd_, scratch_->events, max, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  for (int i = 0; i < n; i++) {
    const uint32_t e = scratch_->events[i].events;
    uint32_t mask = 0;
    if (e & (EPOLLIN | EPOLLRDHUP)) mask |= kReadable;
    if (e & EPOLLOUT) mask |= kWritable;
    // An error or hang-up must reach whoever reads or writes next, so report both.
    if (e & (EPOLLERR | EPOLLHUP)) mask |= kReadable | kWritable;
    if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) mask |= kHangup;
    out[i].data = scratch_->events[i].data.ptr;
    out[i].mask = mask;
  }
  return n;
}

}  // namespace tcplab
