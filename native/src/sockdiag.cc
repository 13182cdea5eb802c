#include "sockdiag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

namespace tcplab {

namespace {

std::string Errno(const char* what) {
  return std::string(what) + ": " + (strerrorname_np(errno) ? strerrorname_np(errno) : "error");
}

bool DumpFamily(int fd, uint8_t family, uint32_t state_mask, DiagResult* out, std::string* error) {
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof(msg);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.nlh.nlmsg_seq = family;
  msg.req.sdiag_family = family;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = state_mask;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    *error = Errno("sendto");
    return false;
  }
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = Errno("recv");
      return false;
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        errno = -e->error;
        *error = Errno("sock_diag");
        return false;
      }
      auto* m = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      if (m->idiag_state < 16) out->states[m->idiag_state]++;
      if (m->idiag_state == 10) out->listeners.push_back({ntohs(m->id.idiag_sport), m->idiag_rqueue, m->idiag_wqueue});
    }
  }
}

}  // namespace

bool SockDiag(uint32_t state_mask, DiagResult* out, std::string* error) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    *error = Errno("socket");
    return false;
  }
  bool ok = DumpFamily(fd, AF_INET, state_mask, out, error) && DumpFamily(fd, AF_INET6, state_mask, out, error);
  close(fd);
  return ok;
}

}  // namespace tcplab
