// TCP sockets of the calling thread's network namespace through NETLINK_SOCK_DIAG
// (what `ss` uses), without starting a process. The lab's sampler calls it 20 times a
// second on every host, so it must be cheap:
//  - listeners only (kListenOnly): the kernel walks just the listening hash — microseconds;
//  - every state: the kernel walks the whole established hash, which on a machine with a
//    large hash (262,144 buckets here, shared by all namespaces) costs a few ms even when
//    the namespace holds no socket. Callers do that less often.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tcplab {

struct DiagListener {
  uint16_t port;
  uint32_t queued;  // accept queue length (ss Recv-Q)
  uint32_t limit;   // its limit, min(backlog, somaxconn) (ss Send-Q)
};

struct DiagResult {
  // Sockets per TCP state, indexed by the kernel's state numbers (1 = ESTABLISHED … 12 = NEW_SYN_RECV).
  uint64_t states[16] = {};
  std::vector<DiagListener> listeners;
};

// Dumps IPv4 and IPv6 TCP sockets in `state_mask` (bit n = state n). Returns false and sets
// `error` (e.g. "socket: EPERM") when the netlink query fails.
bool SockDiag(uint32_t state_mask, DiagResult* out, std::string* error);

constexpr uint32_t kListenOnly = 1u << 10;  // TCP_LISTEN
constexpr uint32_t kAllStates = 0x1ffe;     // states 1..12 (12: NEW_SYN_RECV, request sockets)

}  // namespace tcplab
