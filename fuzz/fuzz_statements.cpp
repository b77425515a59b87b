// Fuzzes keel's prepared-statement bookkeeping (src/prepared): an arbitrary interleaving of
// client messages (framed from the input) and server responses (a type byte each) must never
// crash, read out of bounds or leave the tables inconsistent with what was sent.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "prepared/rewrite.hpp"
#include "protocol/encoder.hpp"
#include "protocol/frame.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using keel::protocol::Frame;
  namespace kp = keel::prepared;
  kp::ServerStatements server;
  kp::ClientStatements client;
  kp::Exchange ex(client);
  kp::Counters counters;
  size_t pos = 0;
  const size_t capacity = size > 0 ? 1 + data[0] % 3 : 1;
  char tx = 'I';
  while (pos < size) {
    uint8_t op = data[pos++];
    if (op & 1) {
      if (pos >= size) break;
      char type = char(data[pos++]);
      if (type == 0) type = 'x';  // Encoder::begin(0) is the untyped startup form
      std::string msg;
      keel::protocol::Encoder enc(msg);
      if (type == 'E') enc.error_response(keel::PgError::error("42601", "x"));
      else if (type == 'Z') enc.ready_for_query(tx = (op & 2) ? 'I' : ((op & 4) ? 'E' : 'T'));
      else if (type == 'C') enc.command_complete((op & 2) ? "DISCARD ALL" : "SELECT 1");
      else enc.begin(type).end();
      std::string before, after;
      (void)ex.on_server(type, std::string_view(msg).substr(5), server, before, after);
    } else {
      uint32_t cont = 0;
      auto f = keel::protocol::next_frame(data + pos, size - pos, cont, 1 << 16, 1 << 16);
      if (f.kind != Frame::Kind::whole) break;
      std::string_view m(reinterpret_cast<const char*>(data + pos), f.size);
      kp::Context ctx{client, server, ex, capacity, tx, tx == 'I' && ex.empty(), counters};
      std::string out;
      bool need_more = false;
      auto rw = kp::rewrite_client_message(f.type, m, f.length, ctx, out, need_more);
      if (rw.skip > m.size()) __builtin_trap();
      kp::nudge_if_needed(ctx, out);
      pos += f.size;
    }
    if (server.size() > capacity) __builtin_trap();
  }
  return 0;
}
