#pragma once
// PostgreSQL v3 message framing (protocol-message-formats): 1 type byte, int32 length that
// includes itself, then the body. Pure and bounded: nothing here trusts a length before checking.
#include <cstddef>
#include <cstdint>

#include "core/bytes.hpp"

namespace keel::protocol {

/// One step of splitting a byte stream into messages.
struct Frame {
  enum class Kind : uint8_t {
    need_more,  ///< not enough bytes for the next unit; read more (compact the buffer first)
    whole,      ///< a complete message (header + body) of `size` bytes starts at the cursor
    head,       ///< the start of a message too large for the buffer; body continues for `continuing`
    tail,       ///< `size` more bytes of the body of a message announced by an earlier `head`
    error,      ///< length field out of range: protocol violation
  };
  Kind kind = Kind::need_more;
  char type = 0;
  uint32_t length = 0;  ///< the length field (body + 4)
  size_t size = 0;      ///< bytes at the cursor this frame covers
};

/// Decides what the bytes at [p, p+n) are. `continuing` is the count of body bytes still owed by a
/// streamed (`head`) message and is updated. Messages whose 1+length fits `capacity` are returned
/// whole only; larger ones are streamed. Lengths < 4 or > `max_length` are errors.
/// (Inline: it runs for every message, both ways.)
inline Frame next_frame(const uint8_t* p, size_t n, uint32_t& continuing, size_t capacity,
                        uint32_t max_length) noexcept {
  Frame f;
  if (continuing > 0) {
    if (n == 0) return f;
    f.kind = Frame::Kind::tail;
    f.size = n < continuing ? n : continuing;
    continuing -= uint32_t(f.size);
    return f;
  }
  if (n < 5) return f;
  f.type = char(p[0]);
  f.length = load_be32(p + 1);
  if (f.length < 4 || f.length > max_length) {
    f.kind = Frame::Kind::error;
    return f;
  }
  const size_t total = size_t(f.length) + 1;
  if (total <= n) {
    f.kind = Frame::Kind::whole;
    f.size = total;
  } else if (total <= capacity) {
    f.kind = Frame::Kind::need_more;
  } else {
    f.kind = Frame::Kind::head;
    f.size = n;
    continuing = uint32_t(total - n);
  }
  return f;
}

/// Message types a frontend may send after startup (protocol-message-formats).
inline bool is_frontend_type(char t) noexcept {
  switch (t) {
    case 'B': case 'C': case 'd': case 'c': case 'f': case 'D': case 'E':
    case 'H': case 'F': case 'p': case 'P': case 'Q': case 'S': case 'X':
      return true;
    default:
      return false;
  }
}

/// Message types a backend may send (protocol-message-formats).
bool is_backend_type(char t) noexcept;

}  // namespace keel::protocol
