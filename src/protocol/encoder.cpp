#include "protocol/encoder.hpp"

#include "core/bytes.hpp"

namespace keel::protocol {

Encoder& Encoder::begin(char type) {
  if (type) out_.push_back(type);
  start_ = out_.size();
  out_.append(4, '\0');
  return *this;
}

Encoder& Encoder::end() {
  store_be32(reinterpret_cast<uint8_t*>(out_.data() + start_), uint32_t(out_.size() - start_));
  return *this;
}

Encoder& Encoder::i16(uint16_t v) {
  uint8_t b[2];
  store_be16(b, v);
  out_.append(reinterpret_cast<char*>(b), 2);
  return *this;
}

Encoder& Encoder::i32(uint32_t v) {
  uint8_t b[4];
  store_be32(b, v);
  out_.append(reinterpret_cast<char*>(b), 4);
  return *this;
}

Encoder& Encoder::error_response(const PgError& e) {
  const char* sev = e.is_fatal() ? "FATAL" : "ERROR";
  begin('E');
  i8('S').cstr(sev).i8('V').cstr(sev).i8('C').cstr(e.sqlstate).i8('M').cstr(e.message);
  if (!e.detail.empty()) i8('D').cstr(e.detail);
  if (!e.hint.empty()) i8('H').cstr(e.hint);
  return i8(0).end();
}

Encoder& Encoder::notice(std::string_view sqlstate, std::string_view message) {
  begin('N');
  i8('S').cstr("NOTICE").i8('V').cstr("NOTICE").i8('C').cstr(sqlstate).i8('M').cstr(message);
  return i8(0).end();
}

Encoder& Encoder::negotiate_protocol_version(uint16_t newest_minor, const std::vector<std::string>& unknown) {
  begin('v').i32((3u << 16) | newest_minor).i32(uint32_t(unknown.size()));
  for (auto& u : unknown) cstr(u);
  return end();
}

Encoder& Encoder::row_description(const std::vector<std::string>& cols) {
  begin('T').i16(uint16_t(cols.size()));
  for (auto& c : cols) {
    // name, table oid, column attr, type oid (25 = text), typlen, typmod, format (text)
    cstr(c).i32(0).i16(0).i32(25).i16(uint16_t(-1)).i32(uint32_t(-1)).i16(0);
  }
  return end();
}

Encoder& Encoder::data_row(const std::vector<std::optional<std::string>>& values) {
  begin('D').i16(uint16_t(values.size()));
  for (auto& v : values) {
    if (!v) {
      i32(uint32_t(-1));
    } else {
      i32(uint32_t(v->size()));
      raw(*v);
    }
  }
  return end();
}

Encoder& Encoder::startup(const std::vector<std::pair<std::string, std::string>>& params) {
  begin(0).i32(3u << 16);
  for (auto& [k, v] : params) cstr(k).cstr(v);
  return i8(0).end();
}

Encoder& Encoder::sasl_initial(std::string_view mechanism, std::string_view data) {
  return begin('p').cstr(mechanism).i32(uint32_t(data.size())).raw(data).end();
}

Encoder& Encoder::cancel_request(int32_t pid, int32_t secret) {
  return begin(0).i32(80877102).i32(uint32_t(pid)).i32(uint32_t(secret)).end();
}

}  // namespace keel::protocol
