#include "auth/md5.hpp"

#include "auth/crypto.hpp"

namespace keel::auth {

std::string md5_password_response(std::string_view user, std::string_view password, std::string_view salt4) {
  std::string inner = md5_hex(std::string(password) + std::string(user));
  return "md5" + md5_hex(inner + std::string(salt4));
}

}  // namespace keel::auth
