#pragma once
// md5 password response (PostgreSQL auth-password): "md5" + md5(md5(password + user) + salt).
#include <string>
#include <string_view>

namespace keel::auth {

std::string md5_password_response(std::string_view user, std::string_view password, std::string_view salt4);

}  // namespace keel::auth
