#include "sql/session_state.hpp"

#include <cctype>
#include <cstring>

#include <gtest/gtest.h>

using namespace keel::sql;

namespace {
SessionPins after(std::initializer_list<const char*> stmts) {
  SessionPins p;
  for (auto* s : stmts)
    if (may_touch_session_state(s)) p.apply(classify_session_state(s));
  return p;
}
}  // namespace

TEST(SessionState, PrefilterSkipsOrdinaryStatements) {
  for (auto* s : {"select 1", "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 3",
                  "insert into t values ('x')", "BEGIN", "COMMIT", "select * from offset_table"})
    EXPECT_FALSE(may_touch_session_state(s)) << s;
  for (auto* s : {"LISTEN x", "set work_mem = '4MB'", "  /* c */ SET x = 1", "select 1; reset all",
                  "create TEMP table t (a int)", "select pg_advisory_lock(1)", "CLOSE ALL"})
    EXPECT_TRUE(may_touch_session_state(s)) << s;
}

// The prefilter against the plain definition: a keyword anywhere (any case), or SET / RESET /
// CLOSE first in a statement, on strings built from fragments that start, end and split them.
TEST(SessionState, PrefilterMatchesPlainDefinition) {
  const std::vector<std::string> words = {"listen", "advisory", "temp", "hold", "prepare",
                                          "deallocate", "discard", "set_config"};
  auto lower = [](std::string t) {
    for (auto& c : t) c = char(std::tolower(static_cast<unsigned char>(c)));
    return t;
  };
  auto plain = [&](const std::string& q) {
    std::string l = lower(q);
    for (auto& w : words)
      if (l.find(w) != std::string::npos) return true;
    size_t i = 0;
    for (;;) {
      size_t k = i;
      while (k < l.size() && (std::isspace(static_cast<unsigned char>(l[k])) || l[k] == '(')) ++k;
      for (const char* w : {"set", "reset", "close"})
        if (l.compare(k, std::strlen(w), w) == 0) return true;
      size_t semi = l.find(';', i);
      if (semi == std::string::npos) return false;
      i = semi + 1;
    }
  };
  const std::vector<std::string> parts = {"se", "t", "SET", "lis", "ten", "LiStEn", "tem", "p", "ho", "ld",
                                          "adv", "isory", "pre", "pare", "dea", "llocate", "dis", "card",
                                          "set_", "config", "select ", "x", " ", ";", "(", "Reset", "close",
                                          "update a ", "te", "le", "ad", "de"};
  uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) % parts.size(); };
  int positives = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string q;
    for (int k = int(next() % 6) + 1; k > 0; --k) q += parts[next()];
    bool want = plain(q);
    positives += want;
    EXPECT_EQ(may_touch_session_state(q), want) << q;
  }
  EXPECT_GT(positives, 1000);
  EXPECT_LT(positives, 19000);
}

TEST(SessionState, FilterRemembersOnlyWhatItCleared) {
  StatementFilter f;
  for (int round = 0; round < 3; ++round) {
    EXPECT_FALSE(f.may_touch("SELECT abalance FROM pgbench_accounts WHERE aid = $1"));
    EXPECT_TRUE(f.may_touch("SET work_mem = '4MB'"));
    EXPECT_FALSE(f.may_touch("SELECT abalance FROM pgbench_accounts WHERE aid = $2"));
    EXPECT_TRUE(f.may_touch("LISTEN x"));
  }
  // Many texts share slots: each answer stays that text's own.
  for (int i = 0; i < 2000; ++i) {
    std::string quiet = "select " + std::to_string(i);
    std::string loud = "select pg_advisory_lock(" + std::to_string(i) + ")";
    EXPECT_FALSE(f.may_touch(quiet)) << quiet;
    EXPECT_TRUE(f.may_touch(loud)) << loud;
    EXPECT_FALSE(f.may_touch(quiet)) << quiet;
  }
  std::string longer(StatementFilter::kMaxText + 10, 'x');
  EXPECT_FALSE(f.may_touch(longer));
  EXPECT_TRUE(f.may_touch(longer + " discard"));
}

struct Case {
  std::vector<const char*> stmts;
  bool pinned;
};

TEST(SessionState, PinTable) {
  const std::vector<Case> cases = {
      {{"select 1"}, false},
      {{"listen chan"}, true},
      {{"listen chan", "unlisten chan"}, false},
      {{"listen a", "listen b", "unlisten *"}, false},
      {{"listen a", "listen b", "unlisten a"}, true},
      {{"select pg_advisory_lock(42)"}, true},
      {{"select pg_try_advisory_lock(42)"}, true},
      {{"select pg_advisory_xact_lock(42)"}, false},
      {{"select pg_advisory_lock(1)", "select pg_advisory_unlock(1)"}, false},
      {{"select pg_advisory_lock(1), pg_advisory_lock(2)", "select pg_advisory_unlock_all()"}, false},
      {{"create temp table t (a int)"}, true},
      {{"create temporary table t as select 1"}, true},
      {{"select 1 into temp t"}, true},
      {{"create table t (a int)"}, false},
      {{"create temp table t (a int)", "discard temp"}, false},
      {{"create temp view v as select 1"}, true},
      {{"declare c cursor with hold for select 1"}, true},
      {{"declare c cursor for select 1"}, false},
      {{"declare c cursor with hold for select 1", "close c"}, false},
      {{"declare c cursor with hold for select 1", "close all"}, false},
      {{"prepare p as select 1"}, true},
      {{"prepare p as select 1", "deallocate p"}, false},
      {{"prepare p as select 1", "prepare q as select 2", "deallocate all"}, false},
      {{"set work_mem = '8MB'"}, true},
      {{"set local work_mem = '8MB'"}, false},
      {{"set transaction isolation level serializable"}, false},
      {{"set session characteristics as transaction read only"}, true},
      {{"set role postgres"}, true},
      {{"set application_name = 'x'"}, false},
      {{"set TimeZone = 'UTC'"}, false},
      {{"set statement_timeout = 5"}, false},  // carried (outside a transaction; see Session)
      {{"set search_path = a"}, true},
      {{"set work_mem = '8MB'", "reset all"}, false},
      {{"select set_config('work_mem', '8MB', false)"}, true},
      {{"listen a", "create temp table t(a int)", "discard all"}, false},
      {{"select 1; listen a"}, true},
      {{"this is not sql; listen"}, false},
  };
  for (auto& c : cases) {
    SessionPins p;
    for (auto* s : c.stmts)
      if (may_touch_session_state(s)) p.apply(classify_session_state(s));
    std::string what;
    for (auto* s : c.stmts) what += std::string(s) + " | ";
    EXPECT_EQ(p.pinned(), c.pinned) << what;
  }
  EXPECT_TRUE(after({"listen a"}).listens == 1);
}

TEST(SessionState, CarriedParameters) {
  auto d = classify_session_state("SET extra_float_digits = 3");
  EXPECT_EQ(d.carried_param, "extra_float_digits");
  EXPECT_EQ(d.carried_value, "3");
  EXPECT_FALSE(d.session_set);
  d = classify_session_state("set lock_timeout to '2s'");
  EXPECT_EQ(d.carried_param, "lock_timeout");
  EXPECT_EQ(d.carried_value, "2s");
  d = classify_session_state("set statement_timeout = 0");
  EXPECT_EQ(d.carried_value, "0");
  d = classify_session_state("reset statement_timeout");
  EXPECT_EQ(d.carried_param, "statement_timeout");
  EXPECT_TRUE(d.param_reset);
  d = classify_session_state("set idle_in_transaction_session_timeout to default");
  EXPECT_TRUE(d.param_reset);
  EXPECT_EQ(d.statements, 1);
  d = classify_session_state("set search_path = a, b");
  EXPECT_TRUE(d.session_set);
  EXPECT_TRUE(d.carried_param.empty());
  d = classify_session_state("set local statement_timeout = 5");
  EXPECT_TRUE(d.carried_param.empty());
  EXPECT_FALSE(d.session_set);
}
