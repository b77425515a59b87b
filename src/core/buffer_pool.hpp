#pragma once
// Per-worker pool of fixed-size I/O buffers. A buffer is held only while bytes are in flight;
// an idle client or server connection holds none. Not thread-safe: one pool per worker.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/counter.hpp"

namespace keel {

class BufferPool;

/// An owned I/O buffer; returns to its pool when destroyed.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& o) noexcept : pool_(o.pool_), data_(o.data_) { o.data_ = nullptr; }
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  uint8_t* data() const { return data_; }
  explicit operator bool() const { return data_ != nullptr; }
  void reset();

 private:
  friend class BufferPool;
  Buffer(BufferPool* pool, uint8_t* data) : pool_(pool), data_(data) {}
  BufferPool* pool_ = nullptr;
  uint8_t* data_ = nullptr;
};

class BufferPool {
 public:
  static constexpr size_t kSize = 32 * 1024;
  explicit BufferPool(size_t keep_free = 256) : keep_free_(keep_free) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  Buffer get();
  /// Readable from any thread (the admin console).
  size_t in_use() const { return size_t(in_use_.get()); }
  size_t free_count() const { return size_t(free_n_.get()); }

 private:
  friend class Buffer;
  void put(uint8_t* p);
  std::vector<uint8_t*> free_;
  size_t keep_free_;
  Counter in_use_, free_n_;
};

}  // namespace keel
