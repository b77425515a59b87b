#pragma once
// Decoders for the few message bodies keel reads (the rest are forwarded untouched).
// Each takes the body (after type and length) and never reads past it.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/pg_error.hpp"

namespace keel::protocol {

using Body = std::string_view;

/// ErrorResponse / NoticeResponse fields → PgError (FATAL and PANIC map to fatal).
std::optional<PgError> parse_error(Body body) noexcept;

/// Authentication request ('R'): code and the remaining data.
struct AuthRequest {
  int32_t code = -1;
  std::string_view data;
};
std::optional<AuthRequest> parse_auth(Body body) noexcept;

/// ParameterStatus ('S').
std::optional<std::pair<std::string_view, std::string_view>> parse_parameter_status(Body body) noexcept;

/// BackendKeyData ('K').
std::optional<std::pair<int32_t, int32_t>> parse_backend_key(Body body) noexcept;

/// SASLInitialResponse ('p' during SASL): mechanism and client-first-message.
struct SaslInitial {
  std::string_view mechanism;
  std::string_view data;
};
std::optional<SaslInitial> parse_sasl_initial(Body body) noexcept;

/// Reads a NUL-terminated string at body[pos...]; advances pos past the NUL. Inline: it reads
/// the statement and portal names of every extended-query message, most of them empty.
inline std::optional<std::string_view> read_cstr(Body body, size_t& pos) noexcept {
  if (pos >= body.size()) return std::nullopt;
  size_t nul = body[pos] == '\0' ? pos : body.find('\0', pos);
  if (nul == std::string_view::npos) return std::nullopt;
  auto s = body.substr(pos, nul - pos);
  pos = nul + 1;
  return s;
}

}  // namespace keel::protocol
