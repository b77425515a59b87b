#pragma once
// Single-writer counters: the owning worker adds without a locked instruction, any thread reads.
#include <atomic>
#include <cstdint>

namespace keel {

class Counter {
 public:
  /// Owning thread only.
  void add(int64_t d = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + d, std::memory_order_relaxed); }
  void set(int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
  /// Any thread.
  int64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

}  // namespace keel
