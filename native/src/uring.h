// The io_uring backend as the server sees it: whether this build has it, and how to make
// one of its loops. uring_loop.cc defines these where liburing was found when the addon was
// built; uring_none.cc defines them where it was not (then only epoll runs).
#pragma once
#include <memory>

#include "loop.h"
#include "stats.h"

namespace tcplab {

// True where the build linked liburing (CMake's TCPLAB_HAVE_URING).
bool uring_built();

// A loop on io_uring that accepts from listen_fd. Throws std::system_error("io_uring_setup")
// when the kernel refuses a ring, std::logic_error where !uring_built() (the addon refuses
// io "io_uring" first, so that one is never reached from JS).
std::unique_ptr<Reactor> make_uring_loop(const LoopOptions& opts, const ConnLimits& limits, ThreadStats& stats,
                                         AcceptControl& accept, int listen_fd);

}  // namespace tcplab
