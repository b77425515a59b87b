#include "prepared/statements.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace keel::prepared {
namespace {

StatementPtr def(std::string_view sql) {
  std::string body(sql);
  body.push_back('\0');
  body.append(2, '\0');  // no parameter types
  return std::make_shared<const Statement>(body);
}

TEST(ClientStatements, SetFindErase) {
  ClientStatements c;
  EXPECT_EQ(c.find("a"), nullptr);
  auto d = def("select 1");
  c.set("a", d);
  ASSERT_NE(c.find("a"), nullptr);
  EXPECT_EQ(*c.find("a"), d);
  c.set("a", def("select 2"));
  EXPECT_NE(*c.find("a"), d);
  c.erase("a");
  c.erase("never");
  EXPECT_EQ(c.size(), 0u);
}

TEST(ServerStatements, FindsByDefinitionNotByObject) {
  ServerStatements s;
  std::vector<std::string> evicted;
  std::string name = s.add(def("select 1"), 10, evicted);
  EXPECT_EQ(name, "_keel_1");
  auto same_text = def("select 1");
  ASSERT_NE(s.find(*same_text), nullptr);
  EXPECT_EQ(*s.find(*same_text), name);
  EXPECT_EQ(s.find(*def("select 2")), nullptr);
  EXPECT_TRUE(evicted.empty());
}

TEST(ServerStatements, EvictsLeastRecentlyUsed) {
  ServerStatements s;
  std::vector<std::string> evicted;
  auto a = def("a"), b = def("b"), c = def("c");
  s.add(a, 2, evicted);
  s.add(b, 2, evicted);
  ASSERT_NE(s.find(*a), nullptr);  // a is now the most recently used
  s.add(c, 2, evicted);
  ASSERT_EQ(evicted, std::vector<std::string>{"_keel_2"});
  EXPECT_EQ(s.find(*b), nullptr);
  EXPECT_NE(s.find(*a), nullptr);
  EXPECT_EQ(s.size(), 2u);
}

TEST(ServerStatements, NamesAreNeverReused) {
  ServerStatements s;
  std::vector<std::string> evicted;
  auto a = def("a");
  s.add(a, 1, evicted);
  s.erase(*a, "_keel_1");
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.add(a, 1, evicted), "_keel_2");
}

TEST(ServerStatements, EraseOnlyUnderTheGivenName) {
  ServerStatements s;
  std::vector<std::string> evicted;
  auto a = def("a");
  s.add(a, 5, evicted);
  s.erase(*a, "_keel_9");
  EXPECT_NE(s.find(*a), nullptr);
  s.clear();
  EXPECT_EQ(s.find(*a), nullptr);
}

}  // namespace
}  // namespace keel::prepared
