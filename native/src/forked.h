// What a fork()ed child of the server does first, whatever the design (fork, prefork,
// reactor-procs): close every fd but its own, so that no socket or pipe of the host program
// stays open in it after its owner closes it (a peer would never see the FIN), and die with
// its parent, even one that is SIGKILLed.
#pragma once
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

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

}  // namespace tcplab
