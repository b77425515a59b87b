#pragma once
// Closes a socket if a deadline passes before the guarded work ends; disarmed on destruction.
// The timer's handler never touches the socket after the guard is gone.
#include <memory>

#include "net/asio.hpp"

namespace keel::net {

class DeadlineGuard {
 public:
  DeadlineGuard(tcp::socket& s, Clock::time_point deadline)
      : alive_(std::make_shared<tcp::socket*>(&s)), timer_(s.get_executor(), deadline) {
    timer_.async_wait([alive = alive_](error_code ec) {
      if (!ec && *alive) {
        error_code ignored;
        (*alive)->close(ignored);
      }
    });
  }
  ~DeadlineGuard() {
    *alive_ = nullptr;
    timer_.cancel();
  }
  DeadlineGuard(const DeadlineGuard&) = delete;
  DeadlineGuard& operator=(const DeadlineGuard&) = delete;

 private:
  std::shared_ptr<tcp::socket*> alive_;
  asio::steady_timer timer_;
};

}  // namespace keel::net
