#include "auth/crypto.hpp"

#include <gtest/gtest.h>

#include <set>
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

// RFC 4231 test case 7, and keys at the block size's edges.
TEST(Crypto, HmacKeysAtAndPastTheBlockSize) {
  EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'),
                            "This is a test using a larger than block-size key and a larger than block-size data. "
                            "The key needs to be hashed before being used by the HMAC algorithm.")),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
  // (values from Python's hmac module) exactly one block is used as is; one byte more is hashed
  EXPECT_EQ(hex(hmac_sha256(std::string(64, '\x01'), "x")),
            "c668fc54e1a2a267c502413f4580c5bb5d9229fef5fb9b4ff5f4ce5e76299783");
  EXPECT_EQ(hex(hmac_sha256(std::string(65, '\x01'), "x")),
            "fa34864aa49f680b10d9dd4d77db4bf268cdc0fe6e204c10fb63c62738e69497");
  EXPECT_EQ(hex(hmac_sha256(std::string(), "")), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(Crypto, RandomBytesAreNeverHandedOutTwice) {
  // Across the per-thread block's refills, and on two threads at once.
  auto draw = [](std::set<std::string>& seen) {
    for (int i = 0; i < 2000; ++i) seen.insert(random_bytes(18));
    for (int i = 0; i < 50; ++i) EXPECT_EQ(random_bytes(200).size(), 200u);  // larger: straight from RAND_bytes
  };
  std::set<std::string> a, b;
  std::thread t1([&] { draw(a); });
  std::thread t2([&] { draw(b); });
  t1.join();
  t2.join();
  EXPECT_EQ(a.size(), 2000u);
  EXPECT_EQ(b.size(), 2000u);
  for (auto& x : a) EXPECT_FALSE(b.count(x));
}
