/* c-loop: the floor a readiness loop costs per request on this machine, for the bench
 * (bench/run.mjs) to set the reactor beside. One thread, one edge-triggered epoll; the
 * listener and every connection non-blocking. A connection's bytes are scanned only for the
 * blank line that ends a request head (no parsing, no limits, no timers, no stats): each one
 * found queues the same keep-alive answer the reactor sends, and all the answers one read
 * found go out in one send. Bodies are not supported (the bench sends GETs).
 *
 * Build: cc -O2 -o c-loop bench/c-loop.c      Run: ./c-loop PORT [BACKLOG]   (default 511) */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define ANSWER "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\nhello\n"
#define MAX_EVENTS 256
#define READ_SIZE 16384
#define MAX_FDS 65536

/* Per connection: how much of "\r\n\r\n" the last read ended in, and answers not yet sent. */
struct conn {
  unsigned char matched;
  size_t pending_off, pending_len;
  char *pending;
};

static struct conn conns[MAX_FDS];
static const char answer[] = ANSWER;
static char out[READ_SIZE / 4 * (sizeof answer - 1) + sizeof answer];

static void drop(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  free(conns[fd].pending);
  memset(&conns[fd], 0, sizeof conns[fd]);
  close(fd);
}

/* Sends what is queued; 0 when all went, 1 when the socket is full, -1 on error. */
static int flush(int fd, struct conn *c) {
  while (c->pending_off < c->pending_len) {
    ssize_t n = send(fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN ? 1 : -1;
    c->pending_off += (size_t)n;
  }
  free(c->pending);
  c->pending = NULL;
  c->pending_off = c->pending_len = 0;
  return 0;
}

/* Queues `len` bytes of answers after whatever is still pending, then sends. */
static int answer_all(int fd, struct conn *c, const char *buf, size_t len) {
  if (c->pending == NULL) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) return -1;
    if (n == (ssize_t)len) return 0;
    if (n < 0) n = 0;
    buf += n;
    len -= (size_t)n;
  }
  char *grown = realloc(c->pending, c->pending_len + len);
  if (grown == NULL) return -1;
  memcpy(grown + c->pending_len, buf, len);
  c->pending = grown;
  c->pending_len += len;
  return flush(fd, c) < 0 ? -1 : 0;
}

static void serve(int ep, int fd) {
  struct conn *c = &conns[fd];
  static char in[READ_SIZE];
  for (;;) {
    ssize_t n = recv(fd, in, sizeof in, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      drop(ep, fd);
      return;
    }
    if (n < 0) return; /* drained */
    size_t answers = 0;
    for (ssize_t i = 0; i < n; i++) {
      const char want = (c->matched & 1) ? '\n' : '\r';
      if (in[i] == want) {
        if (++c->matched == 4) {
          c->matched = 0;
          answers++;
        }
      } else {
        c->matched = in[i] == '\r' ? 1 : 0;
      }
    }
    size_t len = 0;
    while (answers > 0) {
      size_t batch = answers;
      if (batch > sizeof out / (sizeof answer - 1)) batch = sizeof out / (sizeof answer - 1);
      for (size_t k = 0; k < batch; k++, len += sizeof answer - 1) memcpy(out + len, answer, sizeof answer - 1);
      if (answer_all(fd, c, out, len) < 0) {
        drop(ep, fd);
        return;
      }
      answers -= batch;
      len = 0;
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: c-loop PORT [BACKLOG]\n");
    return 2;
  }
  const int port = atoi(argv[1]);
  const int backlog = argc == 3 ? atoi(argv[2]) : 511;
  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr = {INADDR_ANY}};
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, backlog) < 0) {
    perror("c-loop: bind/listen");
    return 1;
  }
  const int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    const int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("c-loop: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (cfd < 0) break; /* EAGAIN, or an error the next wake-up retries */
          if (cfd >= MAX_FDS) {
            close(cfd);
            continue;
          }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = cfd};
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
        }
        continue;
      }
      if ((events[i].events & EPOLLOUT) && conns[fd].pending != NULL && flush(fd, &conns[fd]) < 0) {
        drop(ep, fd);
        continue;
      }
      if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) serve(ep, fd);
    }
  }
}
