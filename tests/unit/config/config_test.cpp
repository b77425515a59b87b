#include "config/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace keel::config;

TEST(Config, ParsesAFullFile) {
  auto r = parse_config(R"(
[keel]
listen = "127.0.0.1:7000"
workers = 3
[pool]
pool_mode = "session"
pool_size = 7
query_wait_timeout = 1.5
[databases.app]
host = "localhost"
port = 5433
pool_size = 2
[users.app]
password = "pw"
)", "t.toml");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  auto& c = *r.config;
  EXPECT_EQ(c.listen_port, 7000);
  EXPECT_EQ(c.workers, 3);
  auto* db = c.database("app");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->dbname, "app");
  EXPECT_EQ(db->pool.mode, PoolMode::session);
  EXPECT_EQ(db->pool.pool_size, 2);
  EXPECT_DOUBLE_EQ(db->pool.query_wait_timeout, 1.5);
  ASSERT_TRUE(c.user("app")->verifier);
  EXPECT_EQ(*c.user("app")->server_password, "pw");
}

TEST(Config, ReportsEveryErrorWithItsLine) {
  auto r = parse_config("[keel]\nlisten = 5\nbogus = 1\n[pool]\npool_mode = \"weird\"\n[databases.a]\n[users.u]\npassword = \"x\"\n",
                        "t.toml");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].line, 2);  // sorted by line
  EXPECT_EQ(r.errors[1].line, 3);
  EXPECT_EQ(r.errors[2].line, 5);
  EXPECT_FALSE(r.config);
}

TEST(Config, SyntaxErrorHasLine) {
  auto r = parse_config("[keel]\nlisten = \n", "t.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 2);
}

TEST(Config, QuickStart) {
  QuickStart q;
  q.primary_url = "postgres://app:p%40ss@127.0.0.1:5433/appdb";
  q.pool_size = 5;
  auto r = config_from_quickstart(q);
  ASSERT_TRUE(r.errors.empty());
  EXPECT_EQ(r.config->database("appdb")->port, 5433);
  EXPECT_EQ(*r.config->user("app")->server_password, "p@ss");
  q.primary_url = "mysql://x";
  EXPECT_FALSE(config_from_quickstart(q).errors.empty());
}

TEST(Config, ReferenceDocMatchesSchema) {
  std::ifstream in(std::string(KEEL_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), reference_markdown()) << "regenerate with: build/dev/keel config-reference > docs/configuration.md";
}
