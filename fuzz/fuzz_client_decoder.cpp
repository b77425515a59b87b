// Fuzzes what keel decodes from clients: message framing (with streaming of large messages),
// SASLInitialResponse, and the SCRAM server's parsing of client-first and client-final.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/scram.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

namespace {
const keel::auth::ScramVerifier& verifier() {
  static auto v = keel::auth::ScramVerifier::from_password("pw", "0123456789abcdef", 16);
  return v;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using keel::protocol::Frame;
  constexpr size_t capacity = 256;
  uint32_t cont = 0;
  size_t pos = 0;
  while (pos < size) {
    auto f = keel::protocol::next_frame(data + pos, size - pos, cont, capacity, 1 << 20);
    if (f.kind == Frame::Kind::need_more || f.kind == Frame::Kind::error) break;
    if (f.size == 0 || f.size > size - pos) __builtin_trap();
    if (f.kind == Frame::Kind::whole) {
      std::string_view body(reinterpret_cast<const char*>(data + pos + 5), f.size - 5);
      (void)keel::protocol::is_frontend_type(f.type);
      if (f.type == 'p') {
        if (auto s = keel::protocol::parse_sasl_initial(body)) {
          keel::auth::ScramServer server(&verifier(), "u", "seed", "servernonce");
          if (auto first = server.handle_client_first(s->data); first.ok())
            (void)server.handle_client_final(body);
        }
      }
    }
    pos += f.size;
  }
  return 0;
}
