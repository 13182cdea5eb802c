// What the forking designs (fork, prefork, reactor-procs) share. A fork()ed child first
// closes every fd but its own, so that no socket or pipe of the host program stays open in it
// after its owner closes it (a peer would never see the FIN), and dies with its parent, even
// one that is SIGKILLed. Parent and children share their controls and counters through one
// MAP_SHARED mapping made before fork(); the parent ends a child with SIGKILL and reaps it by
// pid (never waitpid(-1): the host program may have children of its own).
#pragma once
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <new>
#include <system_error>
#include <vector>

#include "stats.h"

namespace tcplab {

// Keeps 0-2 and `keep`, closes every other fd.
inline void close_all_fds_except(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned from = 3;
  for (int fd : keep) {
    if (fd < 3) continue;
    if (static_cast<unsigned>(fd) > from) close_range(from, static_cast<unsigned>(fd) - 1, 0);
    from = static_cast<unsigned>(fd) + 1;
  }
  close_range(from, ~0U, 0);
}

// PR_SET_PDEATHSIG, and an exit at once if the parent is already gone.
inline void die_with_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(0);
}

// SIGKILL to one child, then waitpid on its pid until it is reaped.
inline void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// The controls (Head) and n ThreadStats, each stats entry on its own cache line, in one
// anonymous MAP_SHARED mapping: what the children write, the parent reads (and the reverse).
template <class Head>
class SharedMapping {
 public:
  explicit SharedMapping(int n) : bytes_(sizeof(Head) + 64 + sizeof(ThreadStats) * static_cast<size_t>(n)) {
    void* m = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
    head_ = new (m) Head();
    const uintptr_t base = (reinterpret_cast<uintptr_t>(m) + sizeof(Head) + 63) & ~uintptr_t{63};
    for (int i = 0; i < n; i++)
      stats_.push_back(new (reinterpret_cast<void*>(base + static_cast<uintptr_t>(i) * sizeof(ThreadStats)))
                           ThreadStats());
  }
  ~SharedMapping() {
    head_->~Head();
    munmap(head_, bytes_);
  }
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;

  Head* head() const { return head_; }
  const std::vector<ThreadStats*>& stats() const { return stats_; }

 private:
  size_t bytes_;
  Head* head_ = nullptr;
  std::vector<ThreadStats*> stats_;
};

}  // namespace tcplab
