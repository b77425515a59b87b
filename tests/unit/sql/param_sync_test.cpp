#include "sql/param_sync.hpp"

#include <gtest/gtest.h>

using namespace keel::sql;

TEST(ParamSync, TrackedNamesAreCaseInsensitive) {
  EXPECT_EQ(tracked_param("datestyle"), "DateStyle");
  EXPECT_EQ(tracked_param("TIMEZONE"), "TimeZone");
  EXPECT_FALSE(tracked_param("work_mem"));
  EXPECT_TRUE(is_reportable("application_name"));
  EXPECT_FALSE(is_reportable("statement_timeout"));
}

TEST(ParamSync, ParsesOptions) {
  ParamList out;
  ASSERT_TRUE(parse_options("-c statement_timeout=5s  -cgeqo=off --lock-timeout=1s -c search_path=a,\\ b", out));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], (std::pair<std::string, std::string>{"statement_timeout", "5s"}));
  EXPECT_EQ(out[1], (std::pair<std::string, std::string>{"geqo", "off"}));
  EXPECT_EQ(out[2], (std::pair<std::string, std::string>{"lock_timeout", "1s"}));
  EXPECT_EQ(out[3], (std::pair<std::string, std::string>{"search_path", "a, b"}));
  ParamList bad;
  EXPECT_FALSE(parse_options("-x foo", bad));
  EXPECT_FALSE(parse_options("-c", bad));
  EXPECT_FALSE(parse_options("-c noequals", bad));
}

TEST(ParamSync, NothingToDoWhenEqual) {
  ParamList server = {{"application_name", "a"}};
  EXPECT_EQ(sync_sql({{"application_name", "a"}}, server, nullptr), "");
  ParamList none;
  ParamList defaults = {{"client_encoding", "UTF8"}};
  EXPECT_EQ(sync_sql({{"client_encoding", "UTF8"}}, none, &defaults), "");
  EXPECT_TRUE(none.empty());
}

TEST(ParamSync, SetsDifferencesAndResetsLeftovers) {
  ParamList server = {{"application_name", "other"}, {"statement_timeout", "1s"}};
  auto sql = sync_sql({{"application_name", "it's"}, {"TimeZone", "UTC"}}, server, nullptr);
  EXPECT_EQ(sql,
            "SELECT pg_catalog.set_config('application_name', 'it''s', false), "
            "pg_catalog.set_config('TimeZone', 'UTC', false); RESET statement_timeout; ");
  EXPECT_EQ(server, (ParamList{{"application_name", "it's"}, {"TimeZone", "UTC"}}));
  EXPECT_EQ(sync_sql({}, server, nullptr), "RESET application_name; RESET TimeZone; ");
  EXPECT_TRUE(server.empty());
}

TEST(ParamSync, ParamNames) {
  EXPECT_TRUE(is_param_name("geqo"));
  EXPECT_TRUE(is_param_name("plpgsql.extra_warnings"));
  EXPECT_FALSE(is_param_name("a;drop table x"));
  EXPECT_FALSE(is_param_name(""));
  EXPECT_FALSE(is_param_name("1abc"));
}
