// net::SendBatch (io_uring_sends), on real loopback TCP connections: the writes of a turn go out
// before the worker waits, in order, coalesced per socket; a send that finds the socket full
// holds the writes behind it until the reader makes room; settle() cancels it.
#include "net/send_batch.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <boost/asio/read.hpp>

#include "net/edge_io.hpp"
#include "net/worker.hpp"

namespace keel::net {
namespace {

struct Pair {
  asio::io_context io{1};
  std::unique_ptr<SendBatch> batch;
  Acceptor acc = open_listener(io, "127.0.0.1", 0);
  Socket a{io}, b{io};  ///< a writes, b reads

  explicit Pair(BatchUses uses = {}) {
    std::string why;
    batch = SendBatch::attach(io, why, uses);
    if (batch) batch->bind_thread();
    b.connect(acc.local_endpoint());
    error_code ec;
    const Stream protocol(acc.local_endpoint().protocol());
    EXPECT_TRUE(accept_now(acc, protocol, a, ec)) << ec.message();
  }
  ~Pair() { batch.reset(); }
  int fd() { return a.native_handle(); }
  /// Another connection: `into` accepted here, `peer` its other end.
  void connect_another(Socket& into, Socket& peer) {
    peer.connect(acc.local_endpoint());
    error_code ec;
    const Stream protocol(acc.local_endpoint().protocol());
    EXPECT_TRUE(accept_now(acc, protocol, into, ec)) << ec.message();
  }
};

std::string chunk(int k, size_t n) { return std::string(n, char('a' + k % 26)); }

void expect_chunks(const std::string& got, int count, size_t n) {
  ASSERT_EQ(got.size(), size_t(count) * n);
  for (int k = 0; k < count; ++k) ASSERT_EQ(got.substr(size_t(k) * n, n), chunk(k, n)) << "chunk " << k;
}

#define SKIP_WITHOUT_BATCH(p) \
  if (!(p).batch) GTEST_SKIP() << "io_uring unavailable here"

TEST(SendBatch, WritesOfATurnGoOutBeforeTheWorkerWaitsInOrderAsOneSendPerSocket) {
  Pair p;
  SKIP_WITHOUT_BATCH(p);
  std::string got(100 * 10, '\0');
  bool read_done = false;
  asio::co_spawn(p.io, [&]() -> awaitable<void> {
    for (int k = 0; k < 100; ++k) {
      std::string c = chunk(k, 10);
      WriteNow w = write_now(p.a, asio::buffer(c));
      EXPECT_TRUE(w.finished());  // copied: the caller's buffer is free at once
      EXPECT_EQ(w.done, c.size());
    }
    EXPECT_TRUE(p.batch->holds(p.fd())) << "queued until the reactor runs";
    // Nothing has reached the socket yet: the reactor's next run submits, then this read waits.
    auto [ec, n] = co_await asio::async_read(p.b, asio::buffer(got), nothrow);
    EXPECT_FALSE(ec) << ec.message();
    read_done = true;
  }, asio::detached);
  p.io.run_for(std::chrono::seconds(5));
  ASSERT_TRUE(read_done);
  expect_chunks(got, 100, 10);
  EXPECT_FALSE(p.batch->holds(p.fd()));
}

TEST(SendBatch, ALargeWriteGoesOutDirectlyAfterWhatIsQueued) {
  Pair p;
  SKIP_WITHOUT_BATCH(p);
  const size_t big = SendBatch::kMaxBatched * 3;
  std::string small = chunk(0, 100), large = chunk(1, big);
  EXPECT_TRUE(write_now(p.a, asio::buffer(small)).finished());
  EXPECT_TRUE(p.batch->holds(p.fd()));
  WriteNow w = write_now(p.a, asio::buffer(large));  // the queued bytes go first, this one directly
  EXPECT_EQ(w.done, big);
  EXPECT_FALSE(p.batch->holds(p.fd()));
  std::string got(100 + big, '\0');
  asio::read(p.b, asio::buffer(got));
  EXPECT_EQ(got, small + large);
}

TEST(SendBatch, ASendThatFindsTheSocketFullHoldsLaterWritesUntilTheReaderMakesRoom) {
  Pair p;
  SKIP_WITHOUT_BATCH(p);
  const size_t n = 4096;
  const int count = 4000;  // 16 MB: more than the two sockets hold
  std::string got(n * count, '\0');
  int waited = 0;
  bool wrote = false, read_done = false;
  asio::co_spawn(p.io, [&]() -> awaitable<void> {
    for (int k = 0; k < count; ++k) {
      std::string c = chunk(k, n);
      WriteNow w = write_now(p.a, asio::buffer(c));
      if (!w.finished()) {
        ++waited;
        EXPECT_EQ(w.done, 0u) << "nothing of a write behind a waiting send is taken";
        error_code ec = co_await write_rest(p.a, asio::buffer(c), w);
        EXPECT_FALSE(ec) << ec.message();
      }
      if (k % 64 == 63) {  // let the reactor submit now and then, as a worker's turns do
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable_t<Executor>());
      }
    }
    wrote = true;
  }, asio::detached);
  Timer start(p.io, std::chrono::milliseconds(200));  // the reader comes late
  start.async_wait([&](error_code) {
    asio::co_spawn(p.io, [&]() -> awaitable<void> {
      auto [ec, got_n] = co_await asio::async_read(p.b, asio::buffer(got), nothrow);
      EXPECT_FALSE(ec) << ec.message();
      read_done = true;
    }, asio::detached);
  });
  p.io.run_for(std::chrono::seconds(20));
  ASSERT_TRUE(wrote);
  ASSERT_TRUE(read_done);
  EXPECT_GT(waited, 0) << "the writer never had to wait: the test did not fill the socket";
  expect_chunks(got, count, n);
  EXPECT_EQ(p.batch->waiting(), 0u);
}

TEST(SendBatch, SettleCancelsASendWaitingForRoomAndWakesTheWriterBehindIt) {
  Pair p;
  SKIP_WITHOUT_BATCH(p);
  std::string c = chunk(0, 4096);
  error_code writer_ec;
  bool writer_done = false;
  asio::co_spawn(p.io, [&]() -> awaitable<void> {
    for (;;) {
      WriteNow w = write_now(p.a, asio::buffer(c));
      if (w.finished()) {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable_t<Executor>());
        continue;
      }
      writer_ec = co_await write_rest(p.a, asio::buffer(c), w);  // behind the waiting send
      break;
    }
    writer_done = true;
  }, asio::detached);
  Timer drop(p.io, std::chrono::milliseconds(300));
  drop.async_wait([&](error_code) {
    EXPECT_EQ(p.batch->waiting(), 1u);
    settle(p.a);  // the connection is being dropped
    error_code ec;
    p.a.close(ec);
  });
  p.io.run_for(std::chrono::seconds(5));
  ASSERT_TRUE(writer_done);
  EXPECT_EQ(writer_ec, asio::error::operation_aborted) << writer_ec.message();
  EXPECT_EQ(p.batch->waiting(), 0u);
}

TEST(SendBatch, ABurstOfSocketsLeavesNoMoreThanTheSpareEntriesKept) {
  Pair p;
  SKIP_WITHOUT_BATCH(p);
  // One turn writes to more sockets than the batch keeps entries for: once sent, the rest of
  // their entries (and buffers) are freed, not kept for a burst that may never come again.
  const size_t count = SendBatch::kKeepSpare + 44;
  std::vector<std::unique_ptr<Socket>> writers, readers;
  for (size_t k = 0; k < count; ++k) {
    readers.push_back(std::make_unique<Socket>(p.io));
    readers.back()->connect(p.acc.local_endpoint());
    writers.push_back(std::make_unique<Socket>(p.io));
    error_code ec;
    const Stream protocol(p.acc.local_endpoint().protocol());
    ASSERT_TRUE(accept_now(p.acc, protocol, *writers.back(), ec)) << ec.message();
  }
  for (size_t k = 0; k < count; ++k) {
    std::string c = chunk(int(k), 1000);
    ASSERT_TRUE(write_now(*writers[k], asio::buffer(c)).finished());
  }
  EXPECT_TRUE(p.batch->holds(writers.back()->native_handle())) << "queued until the reactor runs";
  auto guard = asio::make_work_guard(p.io);
  p.io.poll();  // the reactor's run submits them all
  for (size_t k = 0; k < count; ++k) {
    ASSERT_FALSE(p.batch->holds(writers[k]->native_handle())) << "socket " << k;
    std::string got(1000, '\0');
    asio::read(*readers[k], asio::buffer(got));
    ASSERT_EQ(got, chunk(int(k), 1000)) << "socket " << k;
  }
  EXPECT_EQ(p.batch->spare(), SendBatch::kKeepSpare);
  // Kept entries serve the next turn's writes.
  std::string c = chunk(7, 10);
  ASSERT_TRUE(write_now(*writers[0], asio::buffer(c)).finished());
  EXPECT_EQ(p.batch->spare(), SendBatch::kKeepSpare - 1);
  p.io.poll();
  std::string got(10, '\0');
  asio::read(*readers[0], asio::buffer(got));
  EXPECT_EQ(got, c);
  EXPECT_EQ(p.batch->spare(), SendBatch::kKeepSpare);
}

TEST(SendBatch, TheReadsOfAReactorRunArePrefetchedAndArriveInOrder) {
  Pair p({.sends = false, .reads = true});
  SKIP_WITHOUT_BATCH(p);
  // Two connections, written to in the same turns: a reactor run finds both readable (a lone
  // read is left to its own recv()).
  Socket a2(p.io), b2(p.io);
  p.connect_another(a2, b2);
  const int count = 200;
  const size_t n = 100;
  std::string got[2];
  int read_done = 0;
  for (Socket* s : {&p.a, &a2}) {
    std::string& into = got[s == &p.a ? 0 : 1];
    asio::co_spawn(p.io, [&, s]() -> awaitable<void> {
      char buf[256];
      while (into.size() < count * n) {
        auto [ec, k] = co_await async_read_edge(*s, asio::buffer(buf), nothrow);
        if (ec) break;
        into.append(buf, k);
      }
      ++read_done;
    }, asio::detached);
  }
  asio::co_spawn(p.io, [&]() -> awaitable<void> {
    for (int k = 0; k < count; ++k) {
      std::string c = chunk(k, n);
      EXPECT_EQ(::send(p.b.native_handle(), c.data(), c.size(), 0), ssize_t(n));
      EXPECT_EQ(::send(b2.native_handle(), c.data(), c.size(), 0), ssize_t(n));
      if (k % 3 == 2) co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable_t<Executor>());
    }
  }, asio::detached);
  p.io.run_for(std::chrono::seconds(5));
  ASSERT_EQ(read_done, 2);
  expect_chunks(got[0], count, n);
  expect_chunks(got[1], count, n);
  EXPECT_GT(p.batch->prefetched(), 0u) << "no read went through the ring";
}

TEST(SendBatch, ALoneReadIsLeftToItsOwnRecv) {
  Pair p({.sends = false, .reads = true});
  SKIP_WITHOUT_BATCH(p);
  char buf[64];
  size_t got_n = 0;
  async_read_edge(p.a, asio::buffer(buf), [&](error_code ec, size_t n) {
    EXPECT_FALSE(ec) << ec.message();
    got_n = n;
  });
  ASSERT_EQ(::send(p.b.native_handle(), "hello", 5, 0), 5);
  p.io.run_for(std::chrono::seconds(2));
  ASSERT_EQ(got_n, 5u);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(p.batch->prefetched(), 0u) << "one read went through the ring";
}

TEST(SendBatch, APrefetchedReadCancelledBeforeItRunsStillDeliversItsBytes) {
  Pair p({.sends = false, .reads = true});
  SKIP_WITHOUT_BATCH(p);
  Socket a2(p.io), b2(p.io);  // a second read in the same run: reads are prefetched from two on
  p.connect_another(a2, b2);
  char buf[64], buf2[64];
  EXPECT_TRUE(read_now(p.a, asio::buffer(buf), true).waits());  // nothing yet: known drained
  EXPECT_TRUE(read_now(a2, asio::buffer(buf2), true).waits());
  error_code got_ec = asio::error::would_block;
  size_t got_n = 0, got2_n = 0;
  // Queued without a recv (drained); the bytes come after, so epoll reports them and the
  // reactor's run prefetches the read, ahead of the cancel already queued behind it.
  async_read_edge(p.a, asio::buffer(buf), [&](error_code ec, size_t n) {
    got_ec = ec;
    got_n = n;
  });
  async_read_edge(a2, asio::buffer(buf2), [&](error_code, size_t n) { got2_n = n; });
  ASSERT_EQ(::send(p.b.native_handle(), "hello", 5, 0), 5);
  ASSERT_EQ(::send(b2.native_handle(), "other", 5, 0), 5);
  asio::post(p.io, [&] {
    EXPECT_EQ(p.batch->prefetched(), 2u) << "the cancel came before the prefetch: the test shows nothing";
    p.a.cancel();
  });
  p.io.run_for(std::chrono::seconds(2));
  EXPECT_FALSE(got_ec) << got_ec.message();
  ASSERT_EQ(got_n, 5u);
  EXPECT_EQ(std::string(buf, 5), "hello");
  ASSERT_EQ(got2_n, 5u);
  EXPECT_EQ(std::string(buf2, 5), "other");
}

}  // namespace
}  // namespace keel::net
