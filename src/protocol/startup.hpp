#pragma once
// The untyped first packet of a connection (protocol-message-formats: StartupMessage,
// SSLRequest, GSSENCRequest, CancelRequest). Pure, bounded, noexcept.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel::protocol {

inline constexpr uint32_t kMaxStartupPacket = 10000;
inline constexpr uint32_t kSslRequestCode = 80877103;
inline constexpr uint32_t kGssEncRequestCode = 80877104;
inline constexpr uint32_t kCancelRequestCode = 80877102;

struct StartupPacket {
  enum class Kind : uint8_t { need_more, startup, ssl_request, gss_request, cancel, error };
  Kind kind = Kind::need_more;
  size_t size = 0;             ///< bytes consumed (the packet length)
  uint16_t major = 0, minor = 0;
  std::vector<std::pair<std::string, std::string>> params;  ///< in order sent
  int32_t cancel_pid = 0, cancel_secret = 0;
  std::string_view error;      ///< for Kind::error: what was wrong

  const std::string* param(std::string_view name) const {
    for (auto& [k, v] : params)
      if (k == name) return &v;
    return nullptr;
  }
};

/// Decodes the startup packet at [p, p+n). Returns need_more until the whole packet is present.
StartupPacket decode_startup(const uint8_t* p, size_t n) noexcept;

}  // namespace keel::protocol
