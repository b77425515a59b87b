#include "protocol/frame.hpp"

namespace keel::protocol {

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
