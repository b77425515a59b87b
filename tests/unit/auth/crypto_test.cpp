#include "auth/crypto.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

using namespace keel::auth;

namespace {
std::string hex(const Digest& d) {
  static const char* x = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out.push_back(x[b >> 4]);
    out.push_back(x[b & 15]);
  }
  return out;
}
}  // namespace

// FIPS 180-2 and RFC 4231 vectors, called in turn so each reuses the thread's contexts.
TEST(Crypto, DigestsMatchPublishedVectors) {
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    EXPECT_EQ(hex(hmac_sha256(std::string("Jefe"), "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  }
}

TEST(Crypto, EachThreadHasItsOwnContexts) {
  std::string a, b;
  std::thread t1([&] {
    for (int i = 0; i < 200; ++i) a = hex(hmac_sha256(std::string("Jefe"), "what do ya want for nothing?"));
  });
  std::thread t2([&] {
    for (int i = 0; i < 200; ++i) b = hex(sha256("abc"));
  });
  t1.join();
  t2.join();
  EXPECT_EQ(a, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(b, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
