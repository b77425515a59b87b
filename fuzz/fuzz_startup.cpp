// Fuzzes the startup packet decoder: any bytes, any split.
#include <cstddef>
#include <cstdint>

#include "protocol/startup.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using Kind = keel::protocol::StartupPacket::Kind;
  auto whole = keel::protocol::decode_startup(data, size);
  if (whole.kind != Kind::need_more && whole.kind != Kind::error) {
    if (whole.size > size || whole.size > keel::protocol::kMaxStartupPacket) __builtin_trap();
    // Every prefix of an accepted packet must ask for more, never decide differently.
    for (size_t n = 0; n < whole.size; n += 1 + n / 8) {
      auto p = keel::protocol::decode_startup(data, n);
      if (p.kind != Kind::need_more && p.kind != Kind::error) __builtin_trap();
    }
  }
  return 0;
}
