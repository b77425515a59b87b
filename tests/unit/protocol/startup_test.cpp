#include "protocol/startup.hpp"

#include <gtest/gtest.h>

#include "protocol/encoder.hpp"

using keel::protocol::decode_startup;
using Kind = keel::protocol::StartupPacket::Kind;

namespace {
const uint8_t* u(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }
}

TEST(Startup, DecodesParameters) {
  std::string s;
  keel::protocol::Encoder(s).startup({{"user", "app"}, {"database", "db"}, {"application_name", "x"}});
  auto p = decode_startup(u(s), s.size());
  ASSERT_EQ(p.kind, Kind::startup);
  EXPECT_EQ(p.major, 3);
  EXPECT_EQ(p.minor, 0);
  ASSERT_NE(p.param("user"), nullptr);
  EXPECT_EQ(*p.param("user"), "app");
  EXPECT_EQ(*p.param("database"), "db");
  EXPECT_EQ(p.size, s.size());
}

TEST(Startup, NeedsWholePacket) {
  std::string s;
  keel::protocol::Encoder(s).startup({{"user", "app"}});
  for (size_t n = 0; n < s.size(); ++n) EXPECT_EQ(decode_startup(u(s), n).kind, Kind::need_more);
}

TEST(Startup, SslAndCancel) {
  std::string ssl = {0, 0, 0, 8, 0x04, char(0xd2), 0x16, 0x2f};
  EXPECT_EQ(decode_startup(u(ssl), ssl.size()).kind, Kind::ssl_request);
  std::string c;
  keel::protocol::Encoder(c).cancel_request(1234, -5);
  auto p = decode_startup(u(c), c.size());
  ASSERT_EQ(p.kind, Kind::cancel);
  EXPECT_EQ(p.cancel_pid, 1234);
  EXPECT_EQ(p.cancel_secret, -5);
}

TEST(Startup, RejectsOversizedAndMalformed) {
  std::string big = {0, 0, 0x4e, 0x20, 0, 3, 0, 0};  // 20000
  EXPECT_EQ(decode_startup(u(big), big.size()).kind, Kind::error);
  std::string tiny = {0, 0, 0, 4};
  EXPECT_EQ(decode_startup(u(tiny), tiny.size()).kind, Kind::error);
  std::string unterminated = {0, 0, 0, 12, 0, 3, 0, 0, 'u', 's', 'e', 'r'};
  EXPECT_EQ(decode_startup(u(unterminated), unterminated.size()).kind, Kind::error);
  std::string no_value = {0, 0, 0, 14, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 0};
  EXPECT_EQ(decode_startup(u(no_value), no_value.size()).kind, Kind::error);
}
