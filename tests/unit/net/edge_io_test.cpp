// net::read_now: the speculative read done in place. It takes bytes already there, says when a
// socket is empty (and remembers it drained, so the next try costs no syscall), and keeps the
// reactor's "drained" knowledge true, on a real loopback TCP connection. net::accept_now: the
// accept that leaves nothing to set on the new socket.
#include "net/edge_io.hpp"

#include <fcntl.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include <boost/asio/read.hpp>

#include "net/worker.hpp"

namespace keel::net {
namespace {

// net::accept_now: each pending connection comes out non-blocking, close-on-exec and with
// TCP_NODELAY (inherited from open_listener's socket), with no syscall after accept4(); then
// would_block, and a connection that comes later completes wait_acceptable().
TEST(AcceptNow, TakesPendingConnectionsReadyForUseThenSaysNoneIsLeft) {
  asio::io_context io{1};
  Acceptor acc = open_listener(io, "127.0.0.1", 0);
  ASSERT_TRUE(acc.non_blocking()) << "accept_now must never wait";
  const Stream protocol(acc.local_endpoint().protocol());
  error_code ec;
  Socket none(io);
  EXPECT_FALSE(accept_now(acc, protocol, none, ec));
  EXPECT_EQ(ec, asio::error::would_block);

  Socket c1(io), c2(io);
  c1.connect(acc.local_endpoint());
  c2.connect(acc.local_endpoint());
  for (int i = 0; i < 2; ++i) {
    Socket s(io);
    ASSERT_TRUE(accept_now(acc, protocol, s, ec)) << ec.message();
    EXPECT_TRUE(::fcntl(s.native_handle(), F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(s.native_handle(), F_GETFD) & FD_CLOEXEC);
    tcp::no_delay nd;
    s.get_option(nd);
    EXPECT_TRUE(nd.value()) << "inherited from the listener";
#ifdef KEEL_EDGE_IO
    auto state = edge::io_of(s).get_implementation().state_;
    EXPECT_TRUE(state & edge::ad::socket_ops::internal_non_blocking) << "Asio sets nothing more";
    EXPECT_FALSE(state & edge::ad::socket_ops::possible_dup) << "closing it needs no epoll_ctl(DEL)";
#endif
    // Usable as any accepted socket: bytes both ways.
    asio::write(s, asio::buffer(std::string("hi")));
    char got[2];
    asio::read(i == 0 ? c1 : c2, asio::buffer(got));
    EXPECT_EQ(std::string(got, 2), "hi");
  }
  EXPECT_FALSE(accept_now(acc, protocol, none, ec));
  EXPECT_EQ(ec, asio::error::would_block);

  error_code wec = asio::error::would_block;
  asio::co_spawn(io, [&]() -> awaitable<void> { wec = co_await wait_acceptable(acc); }, asio::detached);
  io.poll();
  EXPECT_EQ(wec, asio::error::would_block) << "nothing pending: the wait waits";
  Socket c3(io);
  c3.connect(acc.local_endpoint());
  io.run_one_for(std::chrono::seconds(2));
  EXPECT_FALSE(wec);
  Socket s3(io);
  EXPECT_TRUE(accept_now(acc, protocol, s3, ec)) << ec.message();
}

// TCP_DEFER_ACCEPT (open_listener's defer_accept_s): a client that connected but sent nothing is
// not handed over yet; its first bytes make it acceptable, and they are there to read at once.
TEST(AcceptNow, WithDeferredAcceptAConnectionComesWithItsFirstBytes) {
  asio::io_context io{1};
  Acceptor acc = open_listener(io, "127.0.0.1", 0, /*defer_accept_s=*/5);
  const Stream protocol(acc.local_endpoint().protocol());
  Socket c(io);
  c.connect(acc.local_endpoint());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  error_code ec;
  Socket s(io);
  EXPECT_FALSE(accept_now(acc, protocol, s, ec)) << "connected but silent: the kernel keeps it";
  EXPECT_EQ(ec, asio::error::would_block);
  asio::write(c, asio::buffer(std::string("x")));
  bool taken = false;
  for (int i = 0; i < 200 && !taken; ++i) {
    taken = accept_now(acc, protocol, s, ec);
    if (!taken) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(taken) << ec.message();
  char got = 0;
  EXPECT_EQ(::recv(s.native_handle(), &got, 1, MSG_DONTWAIT), 1) << "its first bytes came with it";
  EXPECT_EQ(got, 'x');
}

#ifdef KEEL_EDGE_IO  // (other builds read with Asio's own ops: read_now always waits)

class ReadNowLoopback : public ::testing::Test {
 protected:
  void SetUp() override {
    Acceptor acc(io, Stream::endpoint(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)));
    peer.connect(acc.local_endpoint());
    acc.accept(s);
  }
  void say(const std::string& text) { asio::write(peer, asio::buffer(text)); }
  std::string take(size_t room, bool force = false) {
    buf.assign(room, '\0');
    got = read_now(s, asio::buffer(buf), force);
    return got.ec ? std::string() : buf.substr(0, got.n);
  }

  asio::io_context io{1};
  Socket peer{io};
  Socket s{io};
  std::string buf;
  net::ReadNow got;
};

TEST_F(ReadNowLoopback, TakesBytesAlreadyThereAndKnowsWhenItTookThemAll) {
  say("hello");
  EXPECT_EQ(take(512), "hello");
  EXPECT_FALSE(may_be_readable(s)) << "fewer bytes than asked: nothing more is queued";
}

TEST_F(ReadNowLoopback, ASmallBufferLeavesTheSocketReadable) {
  say("0123456789");
  EXPECT_EQ(take(4), "0123");
  EXPECT_TRUE(may_be_readable(s));
  EXPECT_EQ(take(4), "4567");
  EXPECT_EQ(take(4), "89");
  EXPECT_FALSE(may_be_readable(s));
}

TEST_F(ReadNowLoopback, AnEmptySocketWaitsAndIsKnownDrainedUntilAnEdgeOrAForcedRead) {
  EXPECT_EQ(take(512), "");
  EXPECT_TRUE(got.waits());
  EXPECT_FALSE(may_be_readable(s));
  say("late");
  EXPECT_EQ(take(512), "");  // no syscall: the reactor has reported no edge since
  EXPECT_TRUE(got.waits());
  EXPECT_EQ(take(512, /*force=*/true), "late");
  EXPECT_FALSE(got.waits());
}

TEST_F(ReadNowLoopback, AnAsyncReadAfterAWaitCompletesOnTheNextEdge) {
  EXPECT_EQ(take(512), "");
  std::string into(512, '\0');
  error_code ec = asio::error::would_block;
  size_t n = 0;
  async_read_edge(s, asio::buffer(into), [&](error_code e, size_t k) { ec = e, n = k; });
  io.poll();
  EXPECT_EQ(ec, asio::error::would_block) << "nothing to read yet";
  say("edge");
  io.run_for(std::chrono::seconds(5));
  EXPECT_FALSE(ec);
  EXPECT_EQ(into.substr(0, n), "edge");
}

TEST_F(ReadNowLoopback, EndOfFileIsAnError) {
  peer.shutdown(tcp::socket::shutdown_send);
  take(512);
  EXPECT_EQ(got.ec, asio::error::eof);
  EXPECT_FALSE(got.waits());
}

// A FIN that came with the last bytes read raises no later epoll edge: only a poll shows it
// (the worker's sweep polls for it), and a forced read then sees the end.
TEST_F(ReadNowLoopback, AFinThatCameWithTheLastBytesShowsToPollAndToAForcedRead) {
  EXPECT_FALSE(peer_closed(s));
  say("bye");
  peer.shutdown(tcp::socket::shutdown_send);
  EXPECT_EQ(take(512), "bye");
  EXPECT_FALSE(may_be_readable(s)) << "fewer bytes than asked: taken as drained";
  EXPECT_FALSE(says_something(s)) << "no syscall: known drained";
  EXPECT_TRUE(peer_closed(s)) << "poll() shows the FIN";
  take(512, /*force=*/true);
  EXPECT_EQ(got.ec, asio::error::eof);
}

// A kicked (forced) edge wait that peeks the end leaves the socket readable: the unforced read
// that follows it tries recv() and sees EOF instead of waiting for an edge that never comes.
TEST_F(ReadNowLoopback, AForcedEdgeWaitThatFindsTheEndLeavesItToTheNextRead) {
  say("bye");
  peer.shutdown(tcp::socket::shutdown_send);
  EXPECT_EQ(take(512), "bye");
  error_code ec = asio::error::would_block;
  async_wait_edge(s, [&](error_code e, size_t) { ec = e; }, /*force=*/true);
  io.poll();
  EXPECT_FALSE(ec) << "the peek found the end: the wait is over";
  EXPECT_TRUE(may_be_readable(s));
  take(512);
  EXPECT_EQ(got.ec, asio::error::eof);
}

#endif

}  // namespace
}  // namespace keel::net
