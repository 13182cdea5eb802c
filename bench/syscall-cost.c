// What one socket read costs the kernel, four ways: read() or recv(), from a process whose
// fd table is shared with another thread (as in the Node host process, where every call
// takes a reference on the file) or private to the thread (unshare(CLONE_FILES): the
// kernel's fdget skips the reference). Each round trip writes 128 bytes into one end of a
// TCP loopback connection and reads them from the other, so the figure is a real socket's
// path, not a pipe's. CPU time of the thread, ns per round trip; the write is the same in all
// four, so the differences are the read's.
//
// Build and run (bench/run.mjs does not; docs/benchmark.md gives its figures):
//   cc -O2 -pthread -o /tmp/syscall-cost bench/syscall-cost.c && taskset -c 0 /tmp/syscall-cost
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 400000, REPS = 7, SIZE = 128 };

static double thread_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void die(const char* what) {
  perror(what);
  exit(1);
}

// A connected TCP pair on loopback.
static void tcp_pair(int fds[2]) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof a;
  if (l < 0 || bind(l, (struct sockaddr*)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr*)&a, &n))
    die("listen");
  fds[0] = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fds[0], (struct sockaddr*)&a, sizeof a)) die("connect");
  fds[1] = accept(l, NULL, NULL);
  if (fds[1] < 0) die("accept");
  int one = 1;
  setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  close(l);
}

static double run(int use_recv) {
  int fds[2];
  tcp_pair(fds);
  char buf[SIZE];
  memset(buf, 'x', sizeof buf);
  double best = 1e18;
  for (int rep = 0; rep < REPS; rep++) {
    const double t0 = thread_ns();
    for (int i = 0; i < ROUNDS; i++) {
      if (send(fds[0], buf, SIZE, 0) != SIZE) die("send");
      ssize_t r = use_recv ? recv(fds[1], buf, SIZE, 0) : read(fds[1], buf, SIZE);
      if (r != SIZE) die("read");
    }
    const double ns = (thread_ns() - t0) / ROUNDS;
    if (ns < best) best = ns;
  }
  close(fds[0]);
  close(fds[1]);
  return best;
}

static void* idle(void* arg) {
  (void)arg;
  pause();
  return NULL;
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, idle, NULL)) die("pthread_create");  // the fd table is now shared
  const double shared_read = run(0), shared_recv = run(1);
  if (unshare(CLONE_FILES)) die("unshare(CLONE_FILES)");  // this thread's own copy
  const double own_read = run(0), own_recv = run(1);
  printf("ns per round trip (send + read of %d bytes on TCP loopback; best of %d × %d; thread CPU time)\n", SIZE, REPS,
         ROUNDS);
  printf("fd table shared:  read %.0f  recv %.0f\n", shared_read, shared_recv);
  printf("fd table private: read %.0f  recv %.0f\n", own_read, own_recv);
  return 0;
}
