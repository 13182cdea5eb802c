// The io_uring seam (uring.h) for a build without liburing: epoll only.
#include <stdexcept>

#include "uring.h"

namespace tcplab {

bool uring_built() { return false; }

std::unique_ptr<Reactor> make_uring_loop(const LoopOptions&, const ConnLimits&, ThreadStats&, AcceptControl&, int) {
  throw std::logic_error("this build of the addon has no io_uring backend");
}

}  // namespace tcplab
