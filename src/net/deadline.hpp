#pragma once
// Closes a socket if a deadline passes before the guarded work ends; disarmed on destruction.
// The timer's handler never touches the socket after the guard is gone.
#include <memory>

#include "net/asio.hpp"
#include "net/send_batch.hpp"

namespace keel::net {

class DeadlineGuard {
 public:
  DeadlineGuard(Socket& s, Clock::time_point deadline)
      : alive_(std::make_shared<Socket*>(&s)), timer_(s.get_executor(), deadline) {
    timer_.async_wait([alive = alive_](error_code ec) {
      if (!ec && *alive) {
        error_code ignored;
        settle(**alive);
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
  std::shared_ptr<Socket*> alive_;
  Timer timer_;
};

}  // namespace keel::net
