// net::Handoff: the verdict reaches the waiter, through the executor (give()), or inside the
// caller when it runs on the waiter's worker (give_now()).
#include "net/signal.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace keel::net {
namespace {

/// A waiter that records each verdict and waits again until it gets false; set up waiting.
class HandoffWaiter : public ::testing::Test {
 protected:
  void SetUp() override {
    asio::co_spawn(io.get_executor(), [this]() -> awaitable<void> {
      for (;;) {
        bool v = co_await h.wait();
        got.push_back(v ? 1 : 0);
        if (!v) co_return;
      }
    }, asio::detached);
    io.poll();
    ASSERT_TRUE(h.waiting());
  }
  asio::io_context io{1};
  Handoff h;
  std::vector<int> got;
};

TEST_F(HandoffWaiter, GiveResumesTheWaiterLaterWithTheVerdict) {
  h.give(true);
  EXPECT_FALSE(h.waiting());
  EXPECT_TRUE(got.empty());  // not resumed inside give()
  io.poll();
  ASSERT_EQ(got, std::vector<int>{1});
  ASSERT_TRUE(h.waiting());  // it waits again
  h.give(false);
  io.poll();
  EXPECT_EQ(got, (std::vector<int>{1, 0}));
  EXPECT_FALSE(h.waiting());
}

TEST_F(HandoffWaiter, GiveNowResumesTheWaiterInsideTheCallerOnItsThread) {
  // From a handler on the worker's thread: resumed before give_now() returns, up to its next wait.
  asio::post(io, [&] {
    h.give_now(true);
    EXPECT_EQ(got, std::vector<int>{1});
    EXPECT_TRUE(h.waiting());
  });
  EXPECT_EQ(io.poll(), 1u);  // nothing else was scheduled
  ASSERT_EQ(got, std::vector<int>{1});
  asio::post(io, [&] { h.give_now(false); });
  io.poll();
  EXPECT_EQ(got, (std::vector<int>{1, 0}));
  EXPECT_FALSE(h.waiting());
}

TEST_F(HandoffWaiter, GiveNowOffTheWorkerThreadPosts) {
  h.give_now(false);  // not inside run(): like give()
  EXPECT_TRUE(got.empty());
  io.poll();
  EXPECT_EQ(got, std::vector<int>{0});
}

TEST(Handoff, GiveWithoutWaiterDoesNothing) {
  asio::io_context io(1);
  Handoff h;
  h.give(true);
  EXPECT_EQ(io.poll(), 0u);
}

TEST(Handoff, DestroyedWhileWaitingFreesTheWaiter) {
  asio::io_context io(1);
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch = alive;
  {
    Handoff h;
    asio::co_spawn(io.get_executor(), [&h, keep = std::move(alive)]() -> awaitable<void> {
      co_await h.wait();
      ADD_FAILURE() << "resumed after its Handoff was destroyed";
    }, asio::detached);
    io.poll();
    ASSERT_TRUE(h.waiting());
  }
  io.poll();  // Asio unwinds an abandoned coroutine through its executor
  EXPECT_TRUE(watch.expired());  // the coroutine's frames (and what they hold) are gone
}

}  // namespace
}  // namespace keel::net
