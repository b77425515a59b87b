#pragma once
// A reusable single-thread wake-up for one coroutine: wait() suspends until notify().
// Callers re-check their condition after waking (notify before wait is not remembered).
#include "net/asio.hpp"

namespace keel::net {

class Signal {
 public:
  explicit Signal(asio::any_io_executor ex) : timer_(ex, Clock::time_point::max()) {}
  awaitable<void> wait() {
    timer_.expires_at(Clock::time_point::max());
    co_await timer_.async_wait(nothrow);
  }
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

}  // namespace keel::net
