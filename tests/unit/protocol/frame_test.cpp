#include "protocol/frame.hpp"

#include <gtest/gtest.h>

#include <string>

using keel::protocol::Frame;
using keel::protocol::next_frame;

namespace {
std::string msg(char type, const std::string& body) {
  std::string s(1, type);
  uint32_t len = uint32_t(body.size() + 4);
  s += char(len >> 24); s += char(len >> 16); s += char(len >> 8); s += char(len);
  return s + body;
}
const uint8_t* u(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }
}  // namespace

TEST(Frame, WholeMessage) {
  auto m = msg('Q', std::string("select 1\0", 9));
  uint32_t cont = 0;
  auto f = next_frame(u(m), m.size(), cont, 1024, 1 << 20);
  EXPECT_EQ(f.kind, Frame::Kind::whole);
  EXPECT_EQ(f.type, 'Q');
  EXPECT_EQ(f.size, m.size());
}

TEST(Frame, NeedsMoreForShortHeaderAndPartialBody) {
  auto m = msg('Q', "abcdef");
  uint32_t cont = 0;
  for (size_t n = 0; n < m.size(); ++n)
    EXPECT_EQ(next_frame(u(m), n, cont, 1024, 1 << 20).kind, Frame::Kind::need_more) << n;
}

TEST(Frame, RejectsBadLengths) {
  std::string m = {'Q', 0, 0, 0, 3};
  uint32_t cont = 0;
  EXPECT_EQ(next_frame(u(m), m.size(), cont, 1024, 1 << 20).kind, Frame::Kind::error);
  auto big = msg('Q', std::string(2000, 'x'));
  EXPECT_EQ(next_frame(u(big), big.size(), cont, 4096, 1000).kind, Frame::Kind::error);
}

TEST(Frame, StreamsMessagesLargerThanCapacity) {
  auto m = msg('d', std::string(100, 'x'));
  uint32_t cont = 0;
  auto f = next_frame(u(m), 30, cont, 64, 1 << 20);
  EXPECT_EQ(f.kind, Frame::Kind::head);
  EXPECT_EQ(f.size, 30u);
  EXPECT_EQ(cont, m.size() - 30);
  auto t = next_frame(u(m) + 30, m.size() - 30 + 7, cont, 64, 1 << 20);
  EXPECT_EQ(t.kind, Frame::Kind::tail);
  EXPECT_EQ(t.size, m.size() - 30);
  EXPECT_EQ(cont, 0u);
}

TEST(Frame, FrontendTypes) {
  for (char c : std::string("BCdcfDEHFpPQSX")) EXPECT_TRUE(keel::protocol::is_frontend_type(c)) << c;
  for (char c : std::string("zZ\0A", 4)) EXPECT_FALSE(keel::protocol::is_frontend_type(c)) << int(c);
}
