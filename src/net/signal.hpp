#pragma once
// A reusable single-thread wake-up for one coroutine: wait() suspends until notify().
// Callers re-check their condition after waking (notify before wait is not remembered).
#include "net/asio.hpp"

namespace keel::net {

class Signal {
 public:
  explicit Signal(Executor ex) : timer_(ex, Clock::time_point::max()) {}
  awaitable<void> wait() {
    timer_.expires_at(Clock::time_point::max());
    waiting_ = true;
    co_await timer_.async_wait(nothrow);
    waiting_ = false;
  }
  /// Cheap when nobody waits (the pump notifies after every write): no timer call at all.
  void notify() {
    if (waiting_) timer_.cancel();
  }

 private:
  Timer timer_;
  bool waiting_ = false;
};

}  // namespace keel::net
