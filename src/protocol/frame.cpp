#include "protocol/frame.hpp"

#include "core/bytes.hpp"

namespace keel::protocol {

Frame next_frame(const uint8_t* p, size_t n, uint32_t& continuing, size_t capacity,
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

bool is_frontend_type(char t) noexcept {
  switch (t) {
    case 'B': case 'C': case 'd': case 'c': case 'f': case 'D': case 'E':
    case 'H': case 'F': case 'p': case 'P': case 'Q': case 'S': case 'X':
      return true;
    default:
      return false;
  }
}

bool is_backend_type(char t) noexcept {
  switch (t) {
    case 'R': case 'K': case '2': case '3': case 'd': case 'c': case 'G': case 'H':
    case 'W': case 'D': case 'I': case 'E': case 'V': case 'v': case 'n': case 'N':
    case 'A': case 't': case 'S': case '1': case 's': case 'Z': case 'T': case 'C':
      return true;
    default:
      return false;
  }
}

}  // namespace keel::protocol
