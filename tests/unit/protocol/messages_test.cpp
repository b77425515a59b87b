#include "protocol/messages.hpp"

#include <gtest/gtest.h>

#include "protocol/encoder.hpp"

using namespace keel;

TEST(Messages, ErrorRoundTrip) {
  std::string out;
  protocol::Encoder(out).error_response(PgError::fatal(sqlstate::protocol_violation, "bad"));
  auto e = protocol::parse_error(std::string_view(out).substr(5));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate, "08P01");
  EXPECT_EQ(e->message, "bad");
  EXPECT_TRUE(e->is_fatal());
}

TEST(Messages, TruncatedErrorIsRejected) {
  std::string body = "SERROR\0C08P01";  // no terminators
  EXPECT_FALSE(protocol::parse_error(body));
}

TEST(Messages, BackendKeyAndParameterStatus) {
  std::string out;
  protocol::Encoder(out).backend_key_data(7, -9);
  auto k = protocol::parse_backend_key(std::string_view(out).substr(5));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->first, 7);
  EXPECT_EQ(k->second, -9);
  out.clear();
  protocol::Encoder(out).parameter_status("TimeZone", "UTC");
  auto ps = protocol::parse_parameter_status(std::string_view(out).substr(5));
  ASSERT_TRUE(ps);
  EXPECT_EQ(ps->first, "TimeZone");
  EXPECT_EQ(ps->second, "UTC");
}

TEST(Messages, SaslInitial) {
  std::string out;
  protocol::Encoder(out).sasl_initial("SCRAM-SHA-256", "n,,n=,r=abc");
  auto s = protocol::parse_sasl_initial(std::string_view(out).substr(5));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(s->data, "n,,n=,r=abc");
  EXPECT_FALSE(protocol::parse_sasl_initial(std::string_view(out).substr(5, 16)));
}

TEST(Messages, ReadCstrTakesEmptyAndNamedStringsAndRefusesAMissingNul) {
  // A Bind's start: unnamed portal, statement "s1", then bytes that are not a string.
  std::string_view body("\0s1\0ab", 6);
  size_t pos = 0;
  auto portal = protocol::read_cstr(body, pos);
  ASSERT_TRUE(portal);
  EXPECT_TRUE(portal->empty());
  EXPECT_EQ(pos, 1u);
  auto stmt = protocol::read_cstr(body, pos);
  ASSERT_TRUE(stmt);
  EXPECT_EQ(*stmt, "s1");
  EXPECT_EQ(pos, 4u);
  EXPECT_FALSE(protocol::read_cstr(body, pos));  // "ab" has no NUL
  EXPECT_EQ(pos, 4u);
  pos = body.size();
  EXPECT_FALSE(protocol::read_cstr(body, pos));  // nothing left
}
