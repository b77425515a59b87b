#pragma once
// Thin wrappers over OpenSSL primitives used by SCRAM-SHA-256 and md5 authentication.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keel::auth {

using Digest = std::array<uint8_t, 32>;

Digest sha256(std::string_view data);
Digest hmac_sha256(const Digest& key, std::string_view data);
Digest hmac_sha256(std::string_view key, std::string_view data);
Digest pbkdf2_sha256(std::string_view password, std::string_view salt, int iterations);
std::string md5_hex(std::string_view data);
std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view b64);
/// Cryptographically random bytes.
std::string random_bytes(size_t n);
/// Constant-time equality for equal-length inputs; false when lengths differ.
bool constant_time_equal(std::string_view a, std::string_view b);

inline std::string_view as_view(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

}  // namespace keel::auth
