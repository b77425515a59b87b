// net::Handoff: the verdict reaches the waiter, through the executor, never inside give().
#include "net/signal.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace keel::net {
namespace {

TEST(Handoff, GiveResumesTheWaiterLaterWithTheVerdict) {
  asio::io_context io(1);
  Handoff h;
  std::vector<int> got;
  asio::co_spawn(io.get_executor(), [&]() -> awaitable<void> {
    for (;;) {
      bool v = co_await h.wait();
      got.push_back(v ? 1 : 0);
      if (!v) co_return;
    }
  }, asio::detached);
  io.poll();
  ASSERT_TRUE(h.waiting());
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
