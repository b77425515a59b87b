#include "protocol/messages.hpp"

#include "core/bytes.hpp"

namespace keel::protocol {

std::optional<PgError> parse_error(Body body) noexcept {
  try {
    PgError e;
    e.sqlstate = "XX000";
    size_t pos = 0;
    std::string_view severity;
    while (pos < body.size() && body[pos] != '\0') {
      char field = body[pos++];
      auto v = read_cstr(body, pos);
      if (!v) return std::nullopt;
      switch (field) {
        case 'V': severity = *v; break;
        case 'S': if (severity.empty()) severity = *v; break;
        case 'C': e.sqlstate = std::string(*v); break;
        case 'M': e.message = std::string(*v); break;
        case 'D': e.detail = std::string(*v); break;
        case 'H': e.hint = std::string(*v); break;
        default: break;
      }
    }
    e.severity = (severity == "FATAL" || severity == "PANIC") ? Severity::fatal : Severity::error;
    return e;
  } catch (const std::bad_alloc&) {
    return std::nullopt;
  }
}

std::optional<AuthRequest> parse_auth(Body body) noexcept {
  if (body.size() < 4) return std::nullopt;
  AuthRequest a;
  a.code = int32_t(load_be32(reinterpret_cast<const uint8_t*>(body.data())));
  a.data = body.substr(4);
  return a;
}

std::optional<std::pair<std::string_view, std::string_view>> parse_parameter_status(Body body) noexcept {
  size_t pos = 0;
  auto k = read_cstr(body, pos);
  if (!k) return std::nullopt;
  auto v = read_cstr(body, pos);
  if (!v) return std::nullopt;
  return std::make_pair(*k, *v);
}

std::optional<std::pair<int32_t, int32_t>> parse_backend_key(Body body) noexcept {
  if (body.size() != 8) return std::nullopt;
  auto p = reinterpret_cast<const uint8_t*>(body.data());
  return std::make_pair(int32_t(load_be32(p)), int32_t(load_be32(p + 4)));
}

std::optional<SaslInitial> parse_sasl_initial(Body body) noexcept {
  size_t pos = 0;
  auto mech = read_cstr(body, pos);
  if (!mech || body.size() - pos < 4) return std::nullopt;
  int32_t len = int32_t(load_be32(reinterpret_cast<const uint8_t*>(body.data() + pos)));
  pos += 4;
  SaslInitial s;
  s.mechanism = *mech;
  if (len < 0) return s;  // no initial response
  if (size_t(len) != body.size() - pos) return std::nullopt;
  s.data = body.substr(pos, size_t(len));
  return s;
}

}  // namespace keel::protocol
