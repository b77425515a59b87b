#pragma once
// Builds protocol messages keel itself sends, on either side. Pure: appends to a byte string.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/pg_error.hpp"

namespace keel::protocol {

class Encoder {
 public:
  explicit Encoder(std::string& out) : out_(out) {}

  /// Opens a typed message; the length is patched by end(). type 0 = untyped (startup).
  Encoder& begin(char type);
  Encoder& end();
  Encoder& i8(uint8_t v) { out_.push_back(char(v)); return *this; }
  Encoder& i16(uint16_t v);
  Encoder& i32(uint32_t v);
  Encoder& cstr(std::string_view s) { out_.append(s); out_.push_back('\0'); return *this; }
  Encoder& raw(std::string_view s) { out_.append(s); return *this; }

  // Backend messages (keel as server).
  Encoder& error_response(const PgError& e);
  Encoder& notice(std::string_view sqlstate, std::string_view message);
  Encoder& auth_ok() { return begin('R').i32(0).end(); }
  Encoder& auth_sasl(std::string_view mechanism) { return begin('R').i32(10).cstr(mechanism).i8(0).end(); }
  Encoder& auth_sasl_continue(std::string_view data) { return begin('R').i32(11).raw(data).end(); }
  Encoder& auth_sasl_final(std::string_view data) { return begin('R').i32(12).raw(data).end(); }
  Encoder& parameter_status(std::string_view name, std::string_view value) {
    return begin('S').cstr(name).cstr(value).end();
  }
  Encoder& backend_key_data(int32_t pid, int32_t secret) { return begin('K').i32(uint32_t(pid)).i32(uint32_t(secret)).end(); }
  Encoder& ready_for_query(char status) { return begin('Z').i8(uint8_t(status)).end(); }
  Encoder& negotiate_protocol_version(uint16_t newest_minor, const std::vector<std::string>& unknown);
  Encoder& row_description(const std::vector<std::string>& text_columns);
  Encoder& data_row(const std::vector<std::optional<std::string>>& values);
  Encoder& command_complete(std::string_view tag) { return begin('C').cstr(tag).end(); }
  Encoder& empty_query() { return begin('I').end(); }

  // Frontend messages (keel as client of a server).
  Encoder& startup(const std::vector<std::pair<std::string, std::string>>& params);
  Encoder& password(std::string_view pw) { return begin('p').cstr(pw).end(); }
  Encoder& sasl_initial(std::string_view mechanism, std::string_view data);
  Encoder& sasl_response(std::string_view data) { return begin('p').raw(data).end(); }
  Encoder& cancel_request(int32_t pid, int32_t secret);
  Encoder& query(std::string_view sql) { return begin('Q').cstr(sql).end(); }
  Encoder& sync() { return begin('S').end(); }
  Encoder& copy_fail(std::string_view why) { return begin('f').cstr(why).end(); }
  Encoder& terminate() { return begin('X').end(); }

 private:
  std::string& out_;
  size_t start_ = 0;
};

}  // namespace keel::protocol
