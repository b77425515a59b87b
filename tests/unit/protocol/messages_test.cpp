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
