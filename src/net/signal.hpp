#pragma once
// A reusable single-thread wake-up for one coroutine: wait() suspends until notify().
// Callers re-check their condition after waking (notify before wait is not remembered).
#include <memory>

#include "net/asio.hpp"

namespace keel::net {

class Signal {
 public:
  explicit Signal(Executor ex) : ex_(ex) {}
  awaitable<void> wait() {
    if (!timer_) timer_ = std::make_unique<Timer>(ex_);  // made when first needed: most never wait
    timer_->expires_at(Clock::time_point::max());
    waiting_ = true;
    co_await timer_->async_wait(nothrow);
    waiting_ = false;
  }
  /// Cheap when nobody waits (the pump notifies after every write): no timer call at all.
  void notify() {
    if (waiting_) timer_->cancel();
  }

 private:
  Executor ex_;
  std::unique_ptr<Timer> timer_;
  bool waiting_ = false;
};

}  // namespace keel::net
