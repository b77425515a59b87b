#pragma once
// Socket reads that cost no syscall while there is nothing to read.
//
// Asio's epoll reactor registers each socket once, edge-triggered, and keeps a flag per socket
// saying whether an event came since the last read that drained it. Its own receive op reports
// "drained" only at EOF, so every async_read_some after a successful read first tries recv()
// and usually gets EAGAIN, and every async_wait re-arms the socket with epoll_ctl: one wasted
// syscall each time a connection goes quiet, two or three per transaction on a gateway.
//
// These ops tell the reactor when a read drained the socket, so the next read or wait is queued
// without a syscall and runs when epoll reports new bytes. A read drained the socket when it got
// fewer bytes than it asked for: TCP's recv() stops early only when nothing more is queued, and
// bytes that come after it raise a new epoll edge. (recvfrom: recvmsg with TCP_INQ would also say
// so, but costs about 0.2 µs more per read here.)
//
// One case is left to the caller: a FIN or a reset (RST) that arrived together with the last
// bytes read raises no later epoll edge. Sessions poll the sockets they wait on once after each
// read (poll(), all at once, in the worker's sweep) and kick a wait whose socket shows an error
// or hangup (POLLRDHUP: the peer's FIN): the kicked read is forced to try recv() and so sees the
// end. Where the bytes announce the end (a server's FATAL error), the session forces its next
// read itself, and gives no such connection back to the pool; the pool's sweep polls its idle
// connections for a FIN (peer_closed()), as says_something() cannot see one that came early.
//
// The edge wait (the pump's of a session-mode or pinned client, and a parked client's) takes
// the next epoll event for its socket and costs no syscall; started on a socket not known
// drained, it peeks one byte, so bytes or EOF complete it and stay for the read that follows.
// read_now() is the speculative read done in place: bytes already there are taken without
// suspending, where a completed op would be posted and cost the scheduler one more epoll poll.
// Sessions use it right after an edge wait (or a park) ends, when the bytes are known there.
// The ops reach into Asio's reactor (boost/asio/detail), pinned here to Boost 1.81's epoll
// reactor; any other build uses the plain socket ops, minus the saving.
//
// The same flag answers, without a syscall, whether a socket that should stay silent (an idle
// server connection) has said anything since it was drained: says_something() peeks only then.
//
// write_all() is the write side: one non-blocking sendmsg, async only for what it leaves.
//
// accept_now() and wait_acceptable() take new clients the same way: accept4() until the listener
// is empty, then the listener's next epoll edge, with nothing set on the new socket afterwards.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <boost/version.hpp>

#include <boost/asio/buffer.hpp>

#include "net/asio.hpp"
#include "net/send_batch.hpp"

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define KEEL_EDGE_IO 1
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#endif

namespace keel::net {

namespace sys {
// The per-message reads and writes, as raw syscalls: glibc's recv/send/sendmsg are thread
// cancellation points and, in a threaded process, switch asynchronous cancellation on and off
// around every call (about 130 instructions a transaction here). keel never cancels a thread.
inline ssize_t recv(int fd, void* p, size_t n, int flags) {
  return ::syscall(SYS_recvfrom, fd, p, n, flags, nullptr, nullptr);
}
inline ssize_t send(int fd, const void* p, size_t n, int flags) {
  return ::syscall(SYS_sendto, fd, p, n, flags, nullptr, 0);
}
inline ssize_t sendmsg(int fd, const msghdr* m, int flags) { return ::syscall(SYS_sendmsg, fd, m, flags); }
/// errno after a failed non-blocking call: would_block when it would have waited.
inline error_code last_error() {
  return errno == EAGAIN || errno == EWOULDBLOCK ? error_code(asio::error::would_block)
                                                 : error_code(errno, asio::error::get_system_category());
}
}  // namespace sys

/// What read_now() did: `n` bytes came, or `ec` says eof, an error, or would_block (nothing there
/// now: wait with async_read_edge).
struct ReadNow {
  size_t n = 0;
  error_code ec = asio::error::would_block;
  bool waits() const { return ec == asio::error::would_block; }
};

#ifdef KEEL_EDGE_IO
namespace edge {
namespace ad = boost::asio::detail;

/// A socket's or a listener's implementation (its descriptor, state and reactor registration):
/// the same type for both.
using IoImpl = ad::io_object_impl<ad::reactive_socket_service<Stream>, Executor>;
struct SocketAccess : Socket {
  static IoImpl& io(Socket& s) { return s.*(&SocketAccess::impl_); }
};

/// What a receive op does: read into its buffer, or wait for the next edge (a wait that holds no
/// buffer and costs no syscall, see async_wait_edge).
enum class Recv : uint8_t { read, edge };

/// One recv into [p, p + n) (EINTR retried), as a raw syscall (see sys).
inline ssize_t recv_some(int fd, void* p, size_t n, int flags) {
  ssize_t r;
  do r = sys::recv(fd, p, n, flags);
  while (r < 0 && errno == EINTR);
  return r;
}

class RecvOpBase : public ad::reactor_op {
 public:
  RecvOpBase(ad::socket_type s, asio::mutable_buffer b, Recv mode, func_type complete)
      : reactor_op(error_code(), &RecvOpBase::do_perform, complete), edge_(mode == Recv::edge), socket_(s),
        buf_(b) {}

  /// Set while the op is being started: a perform() then is speculative, not an epoll event.
  bool starting_ = false;

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<RecvOpBase*>(base);
    // An edge wait run by an epoll event (readable, error or hangup) is done: the read that
    // follows finds out which. Run speculatively, the socket was not known drained: peek.
    if (o->edge_ && !o->starting_) return done;
    if (o->pre_ != kNone) return status(std::exchange(o->pre_, kNone));  // read already (prefetched)
    char one;
    const size_t asked = o->edge_ ? 1 : o->buf_.size();
    ssize_t n = recv_some(o->socket_, o->edge_ ? &one : o->buf_.data(), asked, o->edge_ ? MSG_PEEK : 0);
    if (n >= 0 && o->edge_) return done;  // bytes or EOF: the read that follows takes them
    return o->took(n, n < 0 ? errno : 0);
  }

  /// A read op (not an edge wait): what a worker's read prefetch may do for it. See prefetched().
  bool reads() const { return !edge_; }
  int socket() const { return socket_; }
  asio::mutable_buffer buffer() const { return buf_; }
  /// The read this op would do on its epoll event was done already, by SendBatch::prefetch in
  /// the same reactor run (`n` bytes, or -1 with `err`): perform() returns what it found
  /// without a syscall. False when it found nothing (the op keeps waiting, as on EAGAIN).
  /// Bytes taken this way are delivered even if the op is cancelled before it runs.
  bool prefetched(ssize_t n, int err) {
    status st = took(n, err);
    if (st == not_done) return false;
    pre_ = uint8_t(st);
    pre_err_ = ec_ ? (ec_ == asio::error::eof ? -1 : err) : 0;
    return st == done;  // true: not drained (the buffer filled)
  }
  /// In the completion: a prefetched result that a cancel overwrote is put back (the bytes were
  /// taken from the socket; dropping them would lose them).
  void restore_prefetched() {
    if (pre_ == kNone) return;
    pre_ = kNone;
    ec_ = pre_err_ == 0 ? error_code() : pre_err_ < 0 ? error_code(asio::error::eof)
                                                       : error_code(pre_err_, asio::error::get_system_category());
  }

 private:
  static constexpr uint8_t kNone = 0xff;
  /// What a recv into the buffer that returned `n` (or -1 with `err`) means for this op.
  status took(ssize_t n, int err) {
    if (n >= 0) {
      bytes_transferred_ = size_t(n);
      if (n == 0 && buf_.size() > 0) {
        ec_ = asio::error::eof;
        return done_and_exhausted;
      }
      return size_t(n) < buf_.size() ? done_and_exhausted : done;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) return not_done;
    ec_ = error_code(err, asio::error::get_system_category());
    return done;
  }

  bool edge_;  // beside starting_: every parked client holds one of these ops
  uint8_t pre_ = kNone;  // a prefetched read's status
  int pre_err_ = 0;      // ... and its error: 0 none, -1 EOF, else errno
  ad::socket_type socket_;
  asio::mutable_buffer buf_;
};

template <class Handler, class IoExecutor>
class RecvOp : public RecvOpBase {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(RecvOp);

  RecvOp(ad::socket_type s, asio::mutable_buffer b, Recv mode, Handler& h, const IoExecutor& ex)
      : RecvOpBase(s, b, mode, &RecvOp::do_complete), handler_(std::move(h)), work_(handler_, ex) {}

  static void do_complete(void* owner, ad::operation* base, const error_code&, std::size_t) {
    auto* o = static_cast<RecvOp*>(base);
    o->restore_prefetched();
    ptr p = {std::addressof(o->handler_), o, o};
    ad::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    // The handler moves out before the op's memory is given back (it may own that memory).
    ad::binder2<Handler, error_code, std::size_t> handler(o->handler_, o->ec_, o->bytes_transferred_);
    p.h = std::addressof(handler.handler_);
    p.reset();
    if (owner) {
      ad::fenced_block b(ad::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

/// The reactor's per-socket "an event came since a read drained it" flags (private in Asio;
/// reached through an explicit instantiation, which C++ exempts from access checks).
struct SpeculativeTag {
  using type = bool (ad::epoll_reactor::descriptor_state::*)[ad::epoll_reactor::max_ops];
  friend type member(SpeculativeTag);
};
struct RegisteredTag {
  using type = uint32_t ad::epoll_reactor::descriptor_state::*;
  friend type member(RegisteredTag);
};
template <class Tag, typename Tag::type M>
struct Reach {
  friend typename Tag::type member(Tag) { return M; }
};
struct AcceptorTag {
  using type = IoImpl Acceptor::*;
  friend type member(AcceptorTag);
};
template struct Reach<SpeculativeTag, &ad::epoll_reactor::descriptor_state::try_speculative_>;
template struct Reach<RegisteredTag, &ad::epoll_reactor::descriptor_state::registered_events_>;
template struct Reach<AcceptorTag, &Acceptor::impl_>;

inline IoImpl& io_of(Socket& s) { return SocketAccess::io(s); }
inline IoImpl& io_of(Acceptor& a) { return a.*member(AcceptorTag{}); }

/// Sets what the reactor knows of a registered socket: `readable` false means drained.
inline void remember(ad::epoll_reactor::descriptor_state* d, bool readable) {
  if (d && d->*member(RegisteredTag{}) != 0) (d->*member(SpeculativeTag{}))[ad::epoll_reactor::read_op] = readable;
}

/// This thread's reactor (one io_context per worker thread), looked up once.
inline ad::reactor& reactor_of(IoImpl& io) {
  thread_local asio::execution_context* ctx = nullptr;
  thread_local ad::reactor* reactor = nullptr;
  auto& c = asio::query(io.get_executor(), asio::execution::context);
  if (&c != ctx) {
    reactor = &asio::use_service<ad::reactor>(c);
    ctx = &c;
  }
  return *reactor;
}

struct InitRecv {
  IoImpl* sock;
  template <class Handler>
  void operator()(Handler&& handler, asio::mutable_buffer b, Recv mode, bool force) const {
    using H = std::decay_t<Handler>;
    using Op = RecvOp<H, Socket::executor_type>;
    auto& io = *sock;
    auto& impl = io.get_implementation();
    auto& reactor = reactor_of(io);
    bool cont = boost_asio_handler_cont_helpers::is_continuation(handler);
    typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) Op(impl.socket_, b, mode, handler, io.get_executor());
    Op* op = p.p;
    op->starting_ = true;  // (single-threaded reactor: nothing completes the op before we return)
    if (!(impl.state_ & ad::socket_ops::non_blocking) &&
        !ad::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, op->ec_))
      reactor.post_immediate_completion(op, cont);
    else if (force && impl.socket_ != ad::invalid_socket) {
      // Kicked: try now, whatever the reactor thinks, and keep what this found as its knowledge:
      // drained (nothing there, or a read took the last bytes) or not (a wait's peek found
      // bytes or EOF, or an error: the read that follows must try recv() and see it).
      auto st = op->perform();
      remember(impl.reactor_data_, st == ad::reactor_op::done);
      if (st == ad::reactor_op::not_done) reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, op, cont, true);
      else reactor.post_immediate_completion(op, cont);
    } else {
      reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, op, cont, true);
    }
    op->starting_ = false;
    p.v = p.p = nullptr;
  }
};

/// Starts a receive op (a read into `b`, or an edge wait) on a socket's or a listener's
/// implementation: async_read_edge, async_wait_edge and wait_acceptable.
template <class Token>
auto initiate_recv(IoImpl& io, Token&& token, asio::mutable_buffer b, Recv mode, bool force) {
  return asio::async_initiate<Token, void(error_code, std::size_t)>(InitRecv{&io}, token, b, mode, force);
}
}  // namespace edge

/// Like s.async_read_some(b, token); completes with (error_code, bytes). `force`: try recv()
/// now even if the last read drained the socket (a kicked wait, see above).
template <class Token>
auto async_read_edge(Socket& s, asio::mutable_buffer b, Token&& token, bool force = false) {
  return edge::initiate_recv(edge::io_of(s), std::forward<Token>(token), b, edge::Recv::read, force);
}

/// A wait for the next epoll edge (bytes, EOF, error), without a buffer and without a syscall
/// when the last read drained the socket: an edge completes it unpeeked, so it may complete on
/// an edge whose bytes a read already took, and the read that follows then just waits. Not for
/// a caller that takes completion as proof of bytes.
/// Started on a socket not known drained, or forced, it peeks one byte: bytes or EOF complete it.
template <class Token>
auto async_wait_edge(Socket& s, Token&& token, bool force = false) {
  return edge::initiate_recv(edge::io_of(s), std::forward<Token>(token), asio::mutable_buffer(), edge::Recv::edge,
                             force);
}

/// False when the socket is known quiet: a read drained it and epoll has reported nothing for it
/// since. No syscall. (True also when the reactor cannot tell.)
inline bool may_be_readable(Socket& s) {
  auto* d = edge::io_of(s).get_implementation().reactor_data_;
  return !d || (d->*member(edge::SpeculativeTag{}))[edge::ad::epoll_reactor::read_op];
}

/// Marks a socket that a peek found empty as drained, as a read that drains it would.
inline void mark_drained(Socket& s) {
  edge::remember(edge::io_of(s).get_implementation().reactor_data_, false);
}

/// Reads what the socket holds now, without suspending: the speculative read async_read_edge
/// would start with, done in place, so bytes already there need no completion scheduled (and the
/// scheduler no extra epoll poll for it). No syscall while the reactor knows the socket drained,
/// unless `force` (a kicked read); what the read finds keeps that knowledge as the reactor's own
/// reads do.
inline ReadNow read_now(Socket& s, asio::mutable_buffer b, bool force = false) {
  ReadNow r;
  if (!force && !may_be_readable(s)) return r;
  ssize_t n = edge::recv_some(s.native_handle(), b.data(), b.size(), MSG_DONTWAIT);
  if (n > 0) {
    r.n = size_t(n);
    r.ec = {};
    if (size_t(n) < b.size()) mark_drained(s);
  } else if (n == 0) {
    r.ec = b.size() > 0 ? error_code(asio::error::eof) : error_code();
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    mark_drained(s);
  } else {
    r.ec = error_code(errno, asio::error::get_system_category());
  }
  return r;
}
#else
inline bool may_be_readable(Socket&) { return true; }
inline void mark_drained(Socket&) {}
inline ReadNow read_now(Socket&, asio::mutable_buffer, bool = false) { return {}; }

template <class Token>
auto async_read_edge(Socket& s, asio::mutable_buffer b, Token&& token, bool = false) {
  return s.async_read_some(b, std::forward<Token>(token));
}

template <class Token>
auto async_wait_edge(Socket& s, Token&& token, bool = false) {
  return s.async_receive(asio::null_buffers(), std::forward<Token>(token));
}
#endif

/// Takes one pending connection off a non-blocking listening socket (open_listener's) without
/// waiting. accept4() makes the new socket non-blocking and close-on-exec at once, so Asio's
/// first operation on it sets nothing with ioctl(); it inherits TCP_NODELAY from the listener
/// (open_listener sets it), so no setsockopt either. And Asio is told the descriptor is keel's
/// own, not a possible duplicate of another: its close then needs no epoll_ctl(DEL), as the
/// kernel drops a closed descriptor from epoll itself. Three syscalls fewer per client
/// connection than async_accept.
/// False with `ec` when nothing was taken: would_block means none is pending now (wait with
/// wait_acceptable()); other errors come from accept4().
inline bool accept_now(Acceptor& a, const Stream& protocol, Socket& out, error_code& ec) {
  int fd;
  do fd = ::accept4(a.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    ec = sys::last_error();
    return false;
  }
  out.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return false;
  }
#ifdef KEEL_EDGE_IO
  auto& state = edge::io_of(out).get_implementation().state_;
  state |= edge::ad::socket_ops::internal_non_blocking;
  state &= ~edge::ad::socket_ops::possible_dup;
#endif
  return true;
}

/// Waits until a connection is pending on a listener that accept_now() found empty. No syscall:
/// the listener is registered edge-triggered and the wait takes its next epoll event (Asio's
/// own async_wait re-arms it with epoll_ctl every time).
inline awaitable<error_code> wait_acceptable(Acceptor& a) {
#ifdef KEEL_EDGE_IO
  edge::remember(edge::io_of(a).get_implementation().reactor_data_, false);  // accept_now drained it
  auto [ec, n] = co_await edge::initiate_recv(edge::io_of(a), nothrow, asio::mutable_buffer(), edge::Recv::edge, false);
#else
  auto [ec] = co_await a.async_wait(Acceptor::wait_read, nothrow);
#endif
  co_return ec;
}

/// What poll() (asked for POLLRDHUP) reports for a socket whose peer has closed its side (its FIN
/// came) or that has an error: the end a FIN or reset that came with the last bytes read raises
/// no epoll edge for. The worker's sweep polls waiting sessions' sockets for it in one call.
inline bool shows_end(short revents) { return revents & (POLLRDHUP | POLLHUP | POLLERR); }

/// shows_end() for one socket: one poll(), no read.
inline bool peer_closed(Socket& s) {
  pollfd p{s.native_handle(), POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && shows_end(p.revents);
}

/// A socket that should be silent (an idle server connection): true when it has bytes, EOF or
/// an error, which means it is closing. Costs no syscall while the reactor knows it quiet; else
/// one non-blocking peek, after which a quiet socket is known quiet again.
inline bool says_something(Socket& s) {
  if (!may_be_readable(s)) return false;
  char one;
  for (;;) {
    ssize_t n = ::recv(s.native_handle(), &one, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return true;
    mark_drained(s);
    return false;
  }
}

namespace detail {
/// One non-blocking sendmsg of up to 64 buffers; returns bytes sent, or -1 with ec (would_block
/// when the socket takes nothing now).
template <class Buffers>
ssize_t send_now(Socket& s, const Buffers& bufs, error_code& ec) {
  iovec iov[64];
  int n = 0;
  for (auto it = asio::buffer_sequence_begin(bufs); it != asio::buffer_sequence_end(bufs) && n < 64; ++it) {
    asio::const_buffer b(*it);
    if (b.size() == 0) continue;
    iov[n].iov_base = const_cast<void*>(b.data());
    iov[n].iov_len = b.size();
    ++n;
  }
  msghdr m{};
  m.msg_iov = iov;
  m.msg_iovlen = size_t(n);
  for (;;) {
    // One piece (the usual case): send(), which the kernel takes without copying in a msghdr.
    ssize_t r = n == 1 ? sys::send(s.native_handle(), iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT)
                       : sys::sendmsg(s.native_handle(), &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    ec = sys::last_error();
    return -1;
  }
}
}  // namespace detail

/// What one non-blocking sendmsg of a whole write did: `done` bytes went out; `ec` is set when
/// the socket failed. finished(): nothing is left to write asynchronously.
struct WriteNow {
  size_t done = 0, total = 0;
  error_code ec;
  bool finished() const { return ec || done == total; }
};

/// Writes what the socket takes now, without suspending (the usual case: the whole of it). On a
/// worker that batches its sends, a small write is queued there instead and counts as written.
template <class Buffers>
WriteNow write_now(Socket& s, const Buffers& bufs) {
  WriteNow w;
  w.total = asio::buffer_size(bufs);
  error_code ec = asio::error::bad_descriptor;
  ssize_t sent = -1;
  if (SendBatch* b = SendBatch::current(); b && s.is_open() && w.total > 0) {
    switch (b->take(s.native_handle(), bufs, w.total)) {
      case SendBatch::Take::queued: w.done = w.total; return w;
      case SendBatch::Take::wait: return w;  // write_rest() waits for the socket's earlier send
      case SendBatch::Take::direct: break;
    }
  }
  if (s.is_open()) sent = detail::send_now(s, bufs, ec);
  if (sent < 0 && ec != asio::error::would_block) w.ec = ec;
  else if (sent > 0) w.done = size_t(sent);
  return w;
}

/// Writes what write_now() left (the slow path: the socket's send buffer was full).
template <class Buffers>
awaitable<error_code> write_rest(Socket& s, const Buffers& bufs, WriteNow w) {
  if (w.finished()) co_return w.ec;
  if (SendBatch* b = SendBatch::current(); b && w.done == 0 && s.is_open() && b->holds(s.native_handle())) {
    // An earlier send of this socket's waits for room in the batch: after it, all of this.
    if (error_code ec = co_await b->idle(s.native_handle())) co_return ec;
    w = write_now(s, bufs);
    if (w.finished()) co_return w.ec;
  }
  std::vector<asio::const_buffer> rest;
  size_t skip = w.done;
  for (auto it = asio::buffer_sequence_begin(bufs); it != asio::buffer_sequence_end(bufs); ++it) {
    asio::const_buffer b(*it);
    if (skip >= b.size()) {
      skip -= b.size();
      continue;
    }
    rest.push_back(b + skip);
    skip = 0;
  }
  auto [wec, n] = co_await asio::async_write(s, rest, nothrow);
  co_return wec;
}

/// Writes all of `bufs`. The socket usually takes it at once: then there is no suspension and no
/// completion to schedule (async_write would post one, and the scheduler polls epoll once more
/// for it). What it does not take is written asynchronously. On the per-message path, callers
/// use write_now() and co_await write_rest() only when it did not finish, which saves this
/// coroutine's frame.
template <class Buffers>
awaitable<error_code> write_all(Socket& s, const Buffers& bufs) {
  WriteNow w = write_now(s, bufs);
  if (w.finished()) co_return w.ec;  // no write_rest frame either
  co_return co_await write_rest(s, bufs, w);
}

}  // namespace keel::net
