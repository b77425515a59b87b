// relay_uring: bench/relay/relay.cpp's byte relay on io_uring instead of epoll. Same work (one
// thread, one upstream connection per client, bytes passed on as they are), but the reads and
// writes are queued to one ring and handed to the kernel together: one io_uring_enter per turn of
// the loop instead of one system call per read, per write and per wait. bench/compare --floor runs
// it as the target "relay-uring" beside "relay": the difference between the two is what system
// calls themselves cost a gateway on this machine (a virtual machine where each one traps to the
// hypervisor), which no epoll-based gateway can avoid.
//
//   relay_uring LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT   (as relay's)
#include <liburing.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common.hpp"

namespace {

constexpr size_t kBuf = 16384;

struct Pair;

// One direction's end: bytes read from fd and not yet written to the peer wait in buf[off, len).
// At most one operation is in flight per side: a receive into buf, or a send of buf to the peer.
struct Side {
  int fd = -1;
  Side* peer = nullptr;
  Pair* pair = nullptr;
  size_t off = 0, len = 0;
  char buf[kBuf];
};

struct Pair {
  Side c, u;
  int inflight = 0;
  bool closing = false;
};

io_uring ring;
int lfd = -1;
relay::Upstream up;

constexpr uint64_t kAccept = 1;  // user_data of the listener's accept; sides are pointers (aligned)

io_uring_sqe* sqe() {
  io_uring_sqe* e = io_uring_get_sqe(&ring);
  if (!e) {
    io_uring_submit(&ring);
    e = io_uring_get_sqe(&ring);
  }
  if (!e) {  // thousands of connections at once: more than this benchmark relay is for
    std::fprintf(stderr, "relay_uring: submission queue full\n");
    std::exit(1);
  }
  return e;
}

void arm_accept() {
  io_uring_sqe* e = sqe();
  io_uring_prep_accept(e, lfd, nullptr, nullptr, 0);
  io_uring_sqe_set_data64(e, kAccept);
}

void arm_recv(Side* s) {
  io_uring_sqe* e = sqe();
  io_uring_prep_recv(e, s->fd, s->buf, kBuf, 0);
  e->ioprio |= IORING_RECVSEND_POLL_FIRST;  // its bytes come later: wait for them, do not try now
  io_uring_sqe_set_data(e, s);
  ++s->pair->inflight;
}

void arm_send(Side* s) {
  io_uring_sqe* e = sqe();
  io_uring_prep_send(e, s->peer->fd, s->buf + s->off, s->len - s->off, MSG_NOSIGNAL);
  io_uring_sqe_set_data(e, s);
  ++s->pair->inflight;
}

// Ends the pair: shutdown() completes the other side's pending receive; the memory goes when no
// operation of the pair is left in flight.
void close_pair(Pair* p) {
  if (!p->closing) {
    p->closing = true;
    shutdown(p->c.fd, SHUT_RDWR);
    shutdown(p->u.fd, SHUT_RDWR);
  }
  if (p->inflight == 0) {
    close(p->c.fd);
    close(p->u.fd);
    delete p;
  }
}

void on_accept(int cfd) {
  arm_accept();
  if (cfd < 0) return;
  // io_uring needs no O_NONBLOCK.
  int sfd = relay::connect_upstream(up);
  if (sfd < 0) {
    close(cfd);
    return;
  }
  relay::nodelay(cfd);
  auto* p = new Pair;
  p->c.fd = cfd;
  p->u.fd = sfd;
  p->c.peer = &p->u;
  p->u.peer = &p->c;
  p->c.pair = p->u.pair = p;
  arm_recv(&p->c);
  arm_recv(&p->u);
}

void on_complete(Side* s, int res) {
  Pair* p = s->pair;
  --p->inflight;
  if (p->closing || res <= 0) {
    close_pair(p);
    return;
  }
  if (s->len == 0) {  // a receive completed: pass it on
    s->off = 0;
    s->len = size_t(res);
    arm_send(s);
    return;
  }
  s->off += size_t(res);  // a send completed
  if (s->off < s->len) {
    arm_send(s);
  } else {
    s->off = s->len = 0;
    arm_recv(s);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: relay_uring LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  if (!relay::parse_upstream(argv[2], argv[3], up)) return 2;
  lfd = relay::listen_loopback(argv[1], 0);
  // One thread submits, and completions' work runs only when it asks for them (in
  // io_uring_enter), not by interrupting it: the cheapest set-up for a single-threaded loop.
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(4096, &ring, &params);
  if (rc < 0) {
    std::fprintf(stderr, "relay_uring: io_uring_queue_init: %s\n", std::strerror(-rc));
    return 1;
  }
  arm_accept();
  for (;;) {
    rc = io_uring_submit_and_wait(&ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      std::fprintf(stderr, "relay_uring: io_uring_enter: %s\n", std::strerror(-rc));
      return 1;
    }
    io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      uint64_t ud = io_uring_cqe_get_data64(cqe);
      if (ud == kAccept)
        on_accept(cqe->res);
      else
        on_complete(reinterpret_cast<Side*>(ud), cqe->res);
    }
    io_uring_cq_advance(&ring, seen);
  }
}
