// Server: see server.h.
#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "forked.h"
#include "uring.h"

namespace tcplab {

namespace {

// Creates a non-blocking listening socket. Returns the fd, or throws SysError.
int make_listener(const std::string& host, int port, int backlog, bool reuse_port) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    family = v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v6;
  } else {
    throw SysError{EINVAL, "inet_pton"};
  }
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SysError{errno, "socket"};
  int one = 1;
  auto fail = [fd](const char* call) {
    int e = errno;
    close(fd);
    throw SysError{e, call};
  };
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) fail("setsockopt");
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) fail("setsockopt");
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) fail("bind");
  if (::listen(fd, backlog) < 0) fail("listen");
  return fd;
}

int bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) throw SysError{errno, "getsockname"};
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

}  // namespace

Server::Server(const ServerConfig& cfg) : cfg_(cfg) {
  limits_.max_header_bytes = cfg.max_header_bytes;
  limits_.max_body_bytes = cfg.max_body_bytes;
  limits_.header_timeout_ms = cfg.header_timeout_ms;
  limits_.body_timeout_ms = cfg.body_timeout_ms;
  limits_.work_us = cfg.work_us;
  limits_.work_sleep = cfg.work_sleep;
  limits_.in_cap = std::max<size_t>(16384, cfg.max_header_bytes + 1024);
  limits_.out_cap = 16384;
}

Server::~Server() { stop(); }

void Server::map_proc_stats(int n) {
  try {
    procs_map_ = std::make_unique<SharedMapping<AcceptControl>>(n);
  } catch (const std::system_error& e) {
    throw SysError{e.code().value(), "mmap"};
  }
  accept_ = procs_map_->head();
  proc_stats_ = procs_map_->stats();
}

void Server::fork_procs() {
  const pid_t parent = getpid();
  for (size_t i = 0; i < loops_.size(); i++) {
    const pid_t pid = fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid > 0) {
      procs_.push_back(pid);
      continue;
    }
    // The child: its loop's fds only (forked.h).
    die_with_parent(parent);
    close_all_fds_except(loops_[i]->own_fds());
    loops_[i]->run_here();
    _exit(0);
  }
}

void Server::reap_procs() {
  for (pid_t pid : procs_) kill_and_reap(pid);
  procs_.clear();
}

int Server::listen() {
  const int n = cfg_.threads;
  LoopOptions base;
  base.edge = cfg_.edge;
  base.idle_timeout_ms = cfg_.idle_timeout_ms;
  base.uring_batch_us = cfg_.uring_batch_us;
  if (cfg_.idle_timeout_ms > 0) base.linger_ms = std::min<int64_t>(base.linger_ms, cfg_.idle_timeout_ms);

  auto add_stats = [this](std::string role) {
    stats_.push_back(std::make_unique<ThreadStats>());
    views_.push_back(ThreadView{std::move(role), stats_.back().get()});
    return stats_.back().get();
  };
  auto add_loop = [&](const char* role, int index) {
    LoopOptions o = base;
    o.role = role;
    o.index = index;
    ThreadStats* st;
    if (cfg_.model == Model::kReactorProcs) {  // a child process's: in the shared mapping
      st = proc_stats_[static_cast<size_t>(index)];
      views_.push_back(ThreadView{std::string(role) + std::to_string(index), st});
    } else {
      st = add_stats(std::string(role) + std::to_string(index));
    }
    loops_.push_back(std::make_unique<Loop>(o, limits_, *st, *accept_));
    return loops_.back().get();
  };
  // io_uring: the same loops' work on a ring (single, reuseport; the addon refuses others).
  auto add_uring = [&](int index, int fd) {
    LoopOptions o = base;
    o.role = "loop";
    o.index = index;
    urings_.push_back(make_uring_loop(o, limits_, *add_stats("loop" + std::to_string(index)), *accept_, fd));
    accepting_.push_back(urings_.back().get());
  };
  if (cfg_.model == Model::kReactorProcs && !procs_map_) map_proc_stats(n);
  accept_->max_connections = cfg_.max_connections;

  int port = cfg_.port;
  auto listener = [&](bool reuse_port) {
    int fd = make_listener(cfg_.host, port, cfg_.backlog, reuse_port);
    if (port == 0) port = bound_port(fd);  // later listeners join the first one's port
    return fd;
  };
  try {
    switch (cfg_.model) {
      case Model::kSingle: {
        if (cfg_.io_uring) {
          const int fd = listener(cfg_.reuse_port);
          try {
            add_uring(0, fd);
          } catch (...) {
            close(fd);
            throw;
          }
          break;
        }
        Loop* l = add_loop("loop", 0);
        l->set_listener(listener(cfg_.reuse_port));
        accepting_.push_back(l);
        break;
      }
      case Model::kReusePort:
        if (cfg_.io_uring) {
          for (int i = 0; i < n; i++) {
            const int fd = listener(true);
            try {
              add_uring(i, fd);
            } catch (...) {
              close(fd);
              throw;
            }
          }
          break;
        }
        [[fallthrough]];
      case Model::kReactorProcs:
        for (int i = 0; i < n; i++) {
          Loop* l = add_loop(cfg_.model == Model::kReactorProcs ? "proc" : "loop", i);
          l->set_listener(listener(true));
          accepting_.push_back(l);
        }
        break;
      case Model::kReactorsWorkers: {
        for (int i = 0; i < n; i++) {
          Loop* l = add_loop("reactor", i);
          l->set_listener(listener(true));
          accepting_.push_back(l);
        }
        std::vector<ThreadStats*> ws;
        for (int i = 0; i < n; i++) ws.push_back(add_stats("worker" + std::to_string(i)));
        pool_ = std::make_unique<WorkerPool>(ws);
        for (auto& l : loops_) l->set_pool(pool_.get());
        break;
      }
      case Model::kAcceptor: {
        Loop* acc = add_loop("accept", 0);
        acc->set_listener(listener(cfg_.reuse_port));
        std::vector<Loop*> io;
        for (int i = 0; i < n; i++) io.push_back(add_loop("io", i));
        acc->set_targets(io);
        accepting_.push_back(acc);
        break;
      }
      case Model::kIterative:
      case Model::kFork:
      case Model::kThread:
      case Model::kPrethread:
      case Model::kPrefork: {
        const bool pool = cfg_.model == Model::kPrethread || cfg_.model == Model::kPrefork;
        BlockingConfig b;
        b.kind = cfg_.model == Model::kIterative ? BlockingConfig::kIterative
                 : cfg_.model == Model::kFork    ? BlockingConfig::kFork
                 : cfg_.model == Model::kThread  ? BlockingConfig::kThread
                 : cfg_.model == Model::kPrefork ? BlockingConfig::kPrefork
                                                 : BlockingConfig::kPrethread;
        b.waiters = pool ? n : 1;
        b.share = cfg_.share;
        b.idle_timeout_ms = cfg_.idle_timeout_ms;
        b.linger_ms = base.linger_ms;
        b.max_connections = cfg_.max_connections;
        std::vector<int> fds;
        std::vector<ThreadStats*> st;
        const bool per_waiter = pool && cfg_.share == Share::kReusePort;
        try {
          fds.push_back(listener(per_waiter || cfg_.reuse_port));
          for (int i = 1; per_waiter && i < n; i++) fds.push_back(listener(true));
        } catch (...) {
          for (int fd : fds) close(fd);
          throw;
        }
        if (cfg_.model == Model::kIterative) {
          st.push_back(add_stats("serve0"));
        } else if (cfg_.model == Model::kThread) {
          st.push_back(add_stats("accept0"));
          st.push_back(add_stats("conns"));
        } else if (cfg_.model == Model::kFork) {
          st.push_back(add_stats("accept0"));
        } else if (cfg_.model == Model::kPrethread) {
          for (int i = 0; i < n; i++) st.push_back(add_stats("waiter" + std::to_string(i)));
        }
        blocking_ = std::make_unique<BlockingServer>(b, limits_, std::move(fds), std::move(st));
        // prefork, fork: the children's counters live in the mapping they share with this process.
        for (int i = 0; cfg_.model == Model::kPrefork && i < n; i++)
          views_.push_back(ThreadView{"proc" + std::to_string(i), blocking_->shared_stats(i)});
        if (cfg_.model == Model::kFork) views_.push_back(ThreadView{"conns", blocking_->shared_stats(0)});
        break;
      }
      case Model::kWorkers: {
        Loop* r = add_loop("reactor", 0);
        r->set_listener(listener(cfg_.reuse_port));
        std::vector<ThreadStats*> ws;
        for (int i = 0; i < n; i++) ws.push_back(add_stats("worker" + std::to_string(i)));
        pool_ = std::make_unique<WorkerPool>(ws);
        r->set_pool(pool_.get());
        accepting_.push_back(r);
        break;
      }
    }
  } catch (const std::system_error& e) {
    // epoll_create1, eventfd, epoll_ctl (EMFILE, ENOMEM …): the same error as a failed socket call.
    discard();
    throw SysError{e.code().value(), syscall_of(e)};
  } catch (...) {
    discard();
    throw;
  }
  accept_->all_stats.clear();
  for (const ThreadView& v : views_) accept_->all_stats.push_back(v.stats);
  // Threads: a failure to start one (EAGAIN) stops and joins those already running.
  started_ = true;
  try {
    if (pool_) pool_->start();
    if (blocking_) {
      blocking_->start();
      if (accept_->paused.load()) blocking_->pause();
    }
    if (cfg_.model == Model::kReactorProcs) {
      fork_procs();
    } else {
      for (auto& l : loops_) l->start();
      for (auto& u : urings_) u->start();
    }
  } catch (const std::system_error& e) {
    stop();
    started_ = false;
    stopped_ = false;
    discard();
    // std::thread says only what went wrong; our own throws name their call first.
    const std::string call = syscall_of(e);
    throw SysError{e.code().value(), call == "fork" || call.rfind("epoll", 0) == 0 || call.rfind("io_uring", 0) == 0
                                         ? call
                                         : "pthread_create"};
  }
  // A rate set before listen() is spread over the accepting loops that exist now.
  set_accept_rate(accept_rate_);
  return port;
}

void Server::discard() {
  // Nothing runs: dropping the loops closes every fd made so far.
  blocking_.reset();
  pool_.reset();
  loops_.clear();
  urings_.clear();
  accepting_.clear();
  views_.clear();
  stats_.clear();
}

std::string Server::syscall_of(const std::system_error& e) {
  const std::string what = e.what();
  const size_t colon = what.find(':');
  return colon == std::string::npos ? what : what.substr(0, colon);
}

void Server::notify_accepting_loops() {
  accept_->generation.fetch_add(1, std::memory_order_acq_rel);
  for (Reactor* l : accepting_) l->wake();
}

void Server::pause() {
  accept_->paused.store(true, std::memory_order_release);
  if (blocking_) blocking_->pause();
  notify_accepting_loops();
}

void Server::resume() {
  accept_->paused.store(false, std::memory_order_release);
  if (blocking_) blocking_->resume();
  notify_accepting_loops();
}

void Server::set_accept_rate(uint64_t per_second) {
  accept_rate_ = per_second;
  if (blocking_) blocking_->set_accept_rate(per_second);
  const uint64_t k = accepting_.empty() ? 1 : accepting_.size();
  accept_->rate_per_loop.store(per_second / k, std::memory_order_relaxed);
  accept_->rate_remainder.store(per_second % k, std::memory_order_relaxed);
  notify_accepting_loops();
}

void Server::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  // Loops first (no new events reach the pool), then the workers (they may still
  // re-arm or hand back connections, harmlessly), then the fds: ~Loop closes them.
  if (blocking_) blocking_->stop();
  reap_procs();  // reactor-procs: the children run the loops
  for (auto& l : loops_) l->stop();
  for (auto& u : urings_) u->stop();
  for (auto& l : loops_) l->join();
  for (auto& u : urings_) u->join();
  if (pool_) {
    pool_->stop();
    pool_->join();
  }
  loops_.clear();
  urings_.clear();
  pool_.reset();
  accepting_.clear();
  // blocking_ stays until the Server goes: prefork's counters (which stats() reads) live in it.
}

}  // namespace tcplab
