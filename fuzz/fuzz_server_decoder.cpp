// Fuzzes what keel decodes from servers: framing and the bodies it reads (ErrorResponse,
// authentication requests, ParameterStatus, BackendKeyData) and the SCRAM client's parsing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/scram.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using keel::protocol::Frame;
  uint32_t cont = 0;
  size_t pos = 0;
  while (pos < size) {
    auto f = keel::protocol::next_frame(data + pos, size - pos, cont, 4096, 0x7fffffff);
    if (f.kind == Frame::Kind::need_more || f.kind == Frame::Kind::error) break;
    if (f.size == 0 || f.size > size - pos) __builtin_trap();
    if (f.kind == Frame::Kind::whole) {
      std::string_view body(reinterpret_cast<const char*>(data + pos + 5), f.size - 5);
      (void)keel::protocol::is_backend_type(f.type);
      switch (f.type) {
        case 'E': case 'N': (void)keel::protocol::parse_error(body); break;
        case 'S': (void)keel::protocol::parse_parameter_status(body); break;
        case 'K': (void)keel::protocol::parse_backend_key(body); break;
        case 'R':
          if (auto a = keel::protocol::parse_auth(body); a && a->code == 11) {
            keel::auth::ScramClient c("pw", "clientnonce");
            (void)c.client_first();
            if (c.handle_server_first(a->data).ok()) (void)c.handle_server_final(a->data);
          }
          break;
        default: break;
      }
    }
    pos += f.size;
  }
  return 0;
}
