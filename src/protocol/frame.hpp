#pragma once
// PostgreSQL v3 message framing (protocol-message-formats): 1 type byte, int32 length that
// includes itself, then the body. Pure and bounded: nothing here trusts a length before checking.
#include <cstddef>
#include <cstdint>

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
Frame next_frame(const uint8_t* p, size_t n, uint32_t& continuing, size_t capacity,
                 uint32_t max_length) noexcept;

/// Message types a frontend may send after startup (protocol-message-formats).
bool is_frontend_type(char t) noexcept;

/// Message types a backend may send (protocol-message-formats).
bool is_backend_type(char t) noexcept;

}  // namespace keel::protocol
