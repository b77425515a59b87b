// relay: the floor under any gateway that reads and writes each message. One thread, one epoll
// set, one upstream connection per client, and nothing else: it reads what a side sends and writes
// it to the other side as it is. No parsing, no pooling, no authentication of its own (the client
// logs in to PostgreSQL through it). bench/compare --floor runs it as the target "relay": its CPU
// time per transaction is what the kernel charges a user-space proxy on this machine for the
// same reads, writes and wake-ups a gateway cannot avoid.
//
//   relay LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT   (UPSTREAM_HOST: an IPv4 address or a socket directory)
#include <fcntl.h>
#include <sys/epoll.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common.hpp"

namespace {

constexpr size_t kBuf = 16384;

// One direction's end: bytes read from fd and not yet written to the peer wait in buf[off, len).
struct Side {
  int fd = -1;
  Side* peer = nullptr;
  size_t off = 0, len = 0;
  char buf[kBuf];
};

int ep = -1;

void watch(Side* s, int op, unsigned events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = s;
  epoll_ctl(ep, op, s->fd, &ev);
}

void close_pair(Side* s) {
  Side* p = s->peer;
  close(s->fd);
  close(p->fd);
  delete s;
  delete p;
}

// Writes s's pending bytes to its peer. Returns false when the pair must close.
bool flush(Side* s) {
  while (s->off < s->len) {
    ssize_t n = send(s->peer->fd, s->buf + s->off, s->len - s->off, MSG_NOSIGNAL);
    if (n > 0) {
      s->off += size_t(n);
    } else if (n < 0 && errno == EAGAIN) {
      // The peer is full: stop reading s until the peer drains.
      watch(s, EPOLL_CTL_MOD, 0);
      watch(s->peer, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
      return true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  s->off = s->len = 0;
  return true;
}

bool on_readable(Side* s) {
  ssize_t n = recv(s->fd, s->buf, kBuf, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
  if (n < 0) return true;
  s->off = 0;
  s->len = size_t(n);
  return flush(s);
}

bool on_writable(Side* s) {
  // s's peer has bytes for s.
  Side* from = s->peer;
  if (!flush(from)) return false;
  if (from->len == 0) {
    watch(s, EPOLL_CTL_MOD, EPOLLIN);
    watch(from, EPOLL_CTL_MOD, EPOLLIN);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: relay LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  relay::Upstream up;
  if (!relay::parse_upstream(argv[2], argv[3], up)) return 2;
  int lfd = relay::listen_loopback(argv[1], SOCK_NONBLOCK);
  ep = epoll_create1(0);
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;  // the listener
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);

  epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 1;
    for (int i = 0; i < n; ++i) {
      auto* s = static_cast<Side*>(evs[i].data.ptr);
      if (!s && evs[i].events == 0) continue;  // a side closed earlier in this batch
      if (!s) {
        for (;;) {
          int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (cfd < 0) break;
          // The socket turns non-blocking after its connect.
          int sfd = relay::connect_upstream(up);
          if (sfd < 0) {
            close(cfd);
            continue;
          }
          fcntl(sfd, F_SETFL, fcntl(sfd, F_GETFL) | O_NONBLOCK);
          relay::nodelay(cfd);
          auto* c = new Side;
          auto* u = new Side;
          c->fd = cfd;
          u->fd = sfd;
          c->peer = u;
          u->peer = c;
          watch(c, EPOLL_CTL_ADD, EPOLLIN);
          watch(u, EPOLL_CTL_ADD, EPOLLIN);
        }
        continue;
      }
      bool ok = true;
      if (evs[i].events & EPOLLOUT) ok = on_writable(s);
      if (ok && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && s->len == 0) ok = on_readable(s);
      if (!ok) {
        // The pair is gone: later events of this batch for its other side must not touch it.
        Side* p = s->peer;
        for (int j = i + 1; j < n; ++j)
          if (evs[j].data.ptr == p) evs[j].data.ptr = nullptr, evs[j].events = 0;
        close_pair(s);
      }
    }
  }
}
