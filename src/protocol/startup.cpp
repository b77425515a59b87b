#include "protocol/startup.hpp"

#include <cstring>

#include "core/bytes.hpp"

namespace keel::protocol {

namespace {
StartupPacket fail(std::string_view why) {
  StartupPacket s;
  s.kind = StartupPacket::Kind::error;
  s.error = why;
  return s;
}
}  // namespace

StartupPacket decode_startup(const uint8_t* p, size_t n) noexcept {
  StartupPacket s;
  if (n < 4) return s;
  const uint32_t len = load_be32(p);
  if (len < 8) return fail("invalid length of startup packet");
  if (len > kMaxStartupPacket) return fail("startup packet too large");
  if (n < len) return s;
  s.size = len;
  const uint32_t code = load_be32(p + 4);
  if (code == kSslRequestCode || code == kGssEncRequestCode) {
    if (len != 8) return fail("invalid length of encryption request");
    s.kind = code == kSslRequestCode ? StartupPacket::Kind::ssl_request : StartupPacket::Kind::gss_request;
    return s;
  }
  if (code == kCancelRequestCode) {
    if (len != 16) return fail("invalid length of cancel request");
    s.kind = StartupPacket::Kind::cancel;
    s.cancel_pid = int32_t(load_be32(p + 8));
    s.cancel_secret = int32_t(load_be32(p + 12));
    return s;
  }
  s.major = uint16_t(code >> 16);
  s.minor = uint16_t(code & 0xffff);
  // Parameters: pairs of NUL-terminated strings, then a final NUL.
  size_t pos = 8;
  try {
    while (true) {
      if (pos >= len) return fail("startup packet has no terminator");
      if (p[pos] == 0) {
        if (pos + 1 != len) return fail("trailing bytes after startup packet terminator");
        break;
      }
      const void* nul = std::memchr(p + pos, 0, len - pos);
      if (!nul) return fail("unterminated startup parameter name");
      size_t klen = size_t(static_cast<const uint8_t*>(nul) - (p + pos));
      std::string key(reinterpret_cast<const char*>(p + pos), klen);
      pos += klen + 1;
      if (pos >= len) return fail("startup parameter without value");
      nul = std::memchr(p + pos, 0, len - pos);
      if (!nul) return fail("unterminated startup parameter value");
      size_t vlen = size_t(static_cast<const uint8_t*>(nul) - (p + pos));
      s.params.emplace_back(std::move(key), std::string(reinterpret_cast<const char*>(p + pos), vlen));
      pos += vlen + 1;
    }
  } catch (const std::bad_alloc&) {
    return fail("out of memory");
  }
  s.kind = StartupPacket::Kind::startup;
  return s;
}

}  // namespace keel::protocol
