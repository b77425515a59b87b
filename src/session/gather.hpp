#pragma once
// Output assembled from runs of an I/O buffer and bytes keel adds in between (renamed or
// synthesized messages), sent with one gathered write. The reader (client → server) and the
// pump (server → client) both use it when keel edits the byte stream; unedited batches do not.
// Offsets, not pointers, until buffers() is called: the added bytes may grow meanwhile.
#include <cstdint>
#include <string>
#include <vector>

#include "net/asio.hpp"

namespace keel::session {

class Gather {
 public:
  /// Appends the base buffer's bytes [from, to) (nothing when empty).
  void run(size_t from, size_t to) {
    if (to > from) pieces_.push_back({false, from, to - from});
  }
  /// Appends added()[from, end): what keel wrote there since `from`.
  void take_added(size_t from) {
    if (added_.size() > from) pieces_.push_back({true, from, added_.size() - from});
  }
  /// keel's own bytes; write here, then take_added().
  std::string& added() { return added_; }
  bool empty() const { return pieces_.empty(); }
  /// The write: every piece in order, then base[tail_from, tail_to). Valid until clear().
  const std::vector<asio::const_buffer>& buffers(const uint8_t* base, size_t tail_from, size_t tail_to) {
    iov_.clear();
    for (auto& p : pieces_)
      iov_.push_back(p.added ? asio::buffer(added_.data() + p.off, p.len) : asio::buffer(base + p.off, p.len));
    if (tail_to > tail_from) iov_.push_back(asio::buffer(base + tail_from, tail_to - tail_from));
    return iov_;
  }
  /// Capacity is kept: no allocation in steady state.
  void clear() {
    pieces_.clear();
    added_.clear();
  }

 private:
  struct Piece {
    bool added;
    size_t off, len;
  };
  std::vector<Piece> pieces_;
  std::string added_;
  std::vector<asio::const_buffer> iov_;
};

}  // namespace keel::session
