#include "core/buffer_pool.hpp"

namespace keel {

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = o.pool_;
    data_ = o.data_;
    o.data_ = nullptr;
  }
  return *this;
}

void Buffer::reset() {
  if (data_) pool_->put(data_);
  data_ = nullptr;
}

BufferPool::~BufferPool() {
  for (auto* p : free_) delete[] p;
}

Buffer BufferPool::get() {
  uint8_t* p;
  if (!free_.empty()) {
    p = free_.back();
    free_.pop_back();
    free_n_.add(-1);
  } else {
    p = new uint8_t[kSize];
  }
  in_use_.add();
  return Buffer(this, p);
}

void BufferPool::put(uint8_t* p) {
  in_use_.add(-1);
  if (free_.size() < keep_free_) {
    free_.push_back(p);
    free_n_.add();
  } else {
    delete[] p;
  }
}

}  // namespace keel
