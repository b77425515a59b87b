#pragma once
// Single-thread wake-ups for coroutines on one worker (a session's reader and pump, a pool's
// waiting clients).
//   Signal:  wait() suspends until notify(); callers re-check their condition after waking
//            (notify before wait is not remembered).
//   Handoff: one coroutine parks in wait() until another gives it a verdict: give() resumes the
//            waiter through the executor, never inside its caller; give_now() resumes it inside
//            the caller, on the worker's thread, up to the waiter's next suspension.
#include <memory>
#include <optional>
#include <utility>

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

/// No timer, no reactor: give() costs one posted completion, give_now() none. The parked
/// coroutine is held here, not by the io_context: the owner must give() before it lets go of the
/// Handoff, or the waiter is abandoned (Asio frees its frames through the executor; its code
/// never resumes).
class Handoff {
 public:
  using Handler = asio::async_result<asio::use_awaitable_t<Executor>, void(bool)>::handler_type;

  /// co_await it: true or false, as given.
  auto wait() {
    asio::use_awaitable_t<Executor> token;
    return asio::async_initiate<asio::use_awaitable_t<Executor>, void(bool)>(
        [this](Handler h) { waiter_.emplace(std::move(h)); }, token);
  }
  bool waiting() const { return waiter_.has_value(); }
  /// Resumes the waiter (if any) with `verdict`, once the caller has returned to the executor.
  void give(bool verdict) { resume(verdict, false); }
  /// Resumes the waiter (if any) with `verdict` before returning, when called on its executor's
  /// thread (else as give()). It runs until its next co_await, inside the caller: for a waiter
  /// whose next steps the caller knows to be safe there. Saves the posted completion and the
  /// extra epoll_wait(0) Asio's scheduler makes before running a posted handler.
  void give_now(bool verdict) { resume(verdict, true); }

 private:
  /// Touches nothing of *this once the waiter runs: resumed here, it may destroy the Handoff.
  void resume(bool verdict, bool here) {
    if (!waiter_) return;
    Handler h = std::move(*waiter_);
    waiter_.reset();
    Executor ex = h.get_executor();
    auto run = [h = std::move(h), verdict]() mutable { std::move(h)(verdict); };
    if (here) asio::dispatch(ex, std::move(run));
    else asio::post(ex, std::move(run));
  }

  std::optional<Handler> waiter_;
};

}  // namespace keel::net
