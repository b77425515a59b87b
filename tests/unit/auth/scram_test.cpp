#include "auth/scram.hpp"

#include <gtest/gtest.h>

using namespace keel::auth;

// RFC 7677 section 3 test vector (user "user", password "pencil").
TEST(Scram, Rfc7677ClientProof) {
  ScramClient c("pencil", "rOprNGfwEbeRWgbNEkqO");
  EXPECT_EQ(c.client_first(), "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
  // With an empty user name the auth message differs from the RFC's, so check a full
  // round trip against our server, and the verifier derivation against the RFC's keys.
  auto v = ScramVerifier::from_password("pencil", *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
  EXPECT_EQ(base64_encode(as_view(v.stored_key)), "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=");
  EXPECT_EQ(base64_encode(as_view(v.server_key)), "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
}

TEST(Scram, RoundTripAcceptsRightPassword) {
  auto v = ScramVerifier::from_password("secret", "saltsaltsalt", 4096);
  ScramServer s(&v, "app", "seed");
  ScramClient c("secret");
  auto sf = s.handle_client_first(c.client_first());
  ASSERT_TRUE(sf.ok());
  auto cf = c.handle_server_first(*sf);
  ASSERT_TRUE(cf.ok());
  auto fin = s.handle_client_final(*cf);
  ASSERT_TRUE(fin.ok());
  EXPECT_TRUE(c.handle_server_final(*fin).ok());
}

TEST(Scram, WrongPasswordAndUnknownUserFailTheSameWay) {
  auto v = ScramVerifier::from_password("secret", "saltsaltsalt", 4096);
  for (bool known : {true, false}) {
    ScramServer s(known ? &v : nullptr, "app", "seed");
    ScramClient c("wrong");
    auto sf = s.handle_client_first(c.client_first());
    ASSERT_TRUE(sf.ok());
    auto cf = c.handle_server_first(*sf);
    ASSERT_TRUE(cf.ok());
    auto fin = s.handle_client_final(*cf);
    ASSERT_FALSE(fin.ok());
    EXPECT_EQ(fin.error().sqlstate, "28P01");
  }
}

TEST(Scram, VerifierTextRoundTrip) {
  auto v = ScramVerifier::from_password("pw", "0123456789abcdef", 4096);
  auto p = ScramVerifier::parse(v.to_string());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->to_string(), v.to_string());
  EXPECT_FALSE(ScramVerifier::parse("md5abc"));
  EXPECT_FALSE(ScramVerifier::parse("SCRAM-SHA-256$x:abc$def:ghi"));
}

TEST(Scram, MalformedClientMessagesAreProtocolErrors) {
  auto v = ScramVerifier::from_password("secret", "saltsaltsalt", 4096);
  ScramServer s(&v, "app", "seed");
  auto r = s.handle_client_first("garbage");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().sqlstate, "08P01");
}
