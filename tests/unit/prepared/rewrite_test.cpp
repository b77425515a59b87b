// The reader's and the pump's halves together: client messages in, server responses in, and
// what each side gets out, as table-like scenarios without sockets.
#include "prepared/rewrite.hpp"

#include <gtest/gtest.h>

#include "protocol/encoder.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

namespace keel::prepared {
namespace {

std::string parse(std::string_view name, std::string_view sql) {
  std::string out;
  protocol::Encoder(out).begin('P').cstr(name).cstr(sql).i16(0).end();
  return out;
}
std::string bind(std::string_view stmt) {
  std::string out;
  protocol::Encoder(out).begin('B').cstr("").cstr(stmt).i16(0).i16(0).i16(0).end();
  return out;
}
std::string close_stmt(std::string_view name) {
  std::string out;
  protocol::Encoder(out).begin('C').i8('S').cstr(name).end();
  return out;
}
std::string empty_msg(char t) {
  std::string out;
  protocol::Encoder(out).begin(t).end();
  return out;
}

/// Message types (and, for Parse/Bind/Close, the statement name) of a byte string.
std::vector<std::string> messages(std::string_view bytes) {
  std::vector<std::string> out;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t pos = 0;
  while (pos < bytes.size()) {
    uint32_t cont = 0;
    auto f = protocol::next_frame(p + pos, bytes.size() - pos, cont, 1 << 20, 1 << 20);
    EXPECT_EQ(f.kind, protocol::Frame::Kind::whole);
    if (f.kind != protocol::Frame::Kind::whole) break;
    std::string_view body = bytes.substr(pos + 5, f.length - 4);
    std::string m(1, f.type);
    size_t at = 0;
    if (f.type == 'P') m += " " + std::string(*protocol::read_cstr(body, at));
    if (f.type == 'B') {
      protocol::read_cstr(body, at);
      m += " " + std::string(*protocol::read_cstr(body, at));
    }
    if ((f.type == 'C' || f.type == 'D') && body.size() >= 2 && (body[0] == 'S' || body[0] == 'P')) {
      at = 1;
      m += std::string(" ") + body[0] + " " + std::string(*protocol::read_cstr(body, at));
    }
    if (f.type == 'E' && !body.empty() && body[0] == 'S') {
      auto e = protocol::parse_error(body);
      m += " " + std::string(e ? e->sqlstate : "?");
    }
    out.push_back(m);
    pos += f.size;
  }
  return out;
}

struct Side {
  ClientStatements client;
  Exchange exchange{client};
  Counters counters;
};

struct Fixture : ::testing::Test {
  ServerStatements server;
  size_t capacity = 10;
  char tx = 'I';

  /// The client sends msgs; returns what goes to the server.
  std::string send(Side& s, const std::vector<std::string>& msgs) {
    std::string to_server;
    for (const auto& m : msgs) {
      Context ctx{s.client, server, s.exchange, capacity, tx, tx == 'I', s.counters};
      std::string out;
      bool need_more = false;
      auto rw = rewrite_client_message(m[0], m, uint32_t(m.size() - 1), ctx, out, need_more);
      EXPECT_FALSE(need_more);
      to_server += out;
      to_server += m.substr(rw.skip);
    }
    Context ctx{s.client, server, s.exchange, capacity, tx, tx == 'I', s.counters};
    nudge_if_needed(ctx, to_server);
    return to_server;
  }
  /// The server answers with these message types; returns what the client gets.
  std::string answer(Side& s, std::string_view types) {
    std::string to_client;
    for (char t : types) {
      std::string msg;
      protocol::Encoder enc(msg);
      if (t == 'E') enc.error_response(PgError::error("42601", "boom"));
      else if (t == 'Z') enc.ready_for_query('I');
      else enc.begin(t).end();
      std::string before, after;
      std::string_view body(msg.data() + 5, msg.size() - 5);
      auto v = s.exchange.on_server(t, body, server, before, after);
      to_client += before;
      if (v.forward) to_client += msg;
      to_client += after;
    }
    return to_client;
  }
};

using V = std::vector<std::string>;

TEST_F(Fixture, NewStatementIsRenamedAndBindFollows) {
  Side a;
  EXPECT_EQ(messages(send(a, {parse("s1", "select 1"), bind("s1"), empty_msg('E'), empty_msg('S')})),
            (V{"P _keel_1", "B _keel_1", "E", "S"}));
  EXPECT_EQ(messages(answer(a, "12CZ")), (V{"1", "2", "C", "Z"}));
  EXPECT_TRUE(a.exchange.empty());
  EXPECT_EQ(a.counters.parses, 1u);
}

TEST_F(Fixture, DataRowsPassAndKeelsAnswerAtTheHeadGoesFirst) {
  Side a, b;
  send(a, {parse("x", "select 1"), empty_msg('S')});
  answer(a, "1Z");
  // Rows of a plain exchange pass as they came.
  send(a, {parse("", "select 1"), bind(""), empty_msg('E'), empty_msg('S')});
  EXPECT_EQ(messages(answer(a, "12DDDCZ")), (V{"1", "2", "D", "D", "D", "C", "Z"}));
  EXPECT_TRUE(a.exchange.empty());
  // keel's ParseComplete is owed first: it goes out before the first row (an Execute of a
  // portal the client bound before).
  EXPECT_EQ(messages(send(b, {parse("mine", "select 1"), empty_msg('E'), empty_msg('S')})), (V{"E", "S"}));
  EXPECT_EQ(messages(answer(b, "DDCZ")), (V{"1", "D", "D", "C", "Z"}));
  EXPECT_TRUE(b.exchange.empty());
}

TEST_F(Fixture, SecondClientReusesAndGetsKeelsParseComplete) {
  Side a, b;
  send(a, {parse("x", "select 1"), empty_msg('S')});
  answer(a, "1Z");
  EXPECT_EQ(messages(send(b, {parse("mine", "select 1"), bind("mine"), empty_msg('E'), empty_msg('S')})),
            (V{"B _keel_1", "E", "S"}));
  EXPECT_EQ(messages(answer(b, "2CZ")), (V{"1", "2", "C", "Z"}));
  EXPECT_EQ(b.counters.reused, 1u);
}

TEST_F(Fixture, StatementMissingOnThisServerIsPreparedFirst) {
  Side a;
  send(a, {parse("s1", "select 1"), empty_msg('S')});
  answer(a, "1Z");
  server.clear();  // as if a landed on another server connection
  EXPECT_EQ(messages(send(a, {bind("s1"), empty_msg('E'), empty_msg('S')})), (V{"P _keel_2", "B _keel_2", "E", "S"}));
  EXPECT_EQ(messages(answer(a, "12CZ")), (V{"2", "C", "Z"}));  // keel's ParseComplete swallowed
}

TEST_F(Fixture, FailedParseLeavesNothingDefined) {
  Side a;
  send(a, {parse("bad", "selec"), bind("bad"), empty_msg('E'), empty_msg('S')});
  EXPECT_EQ(messages(answer(a, "EZ")), (V{"E 42601", "Z"}));
  EXPECT_EQ(a.client.find("bad"), nullptr);
  EXPECT_EQ(server.size(), 0u);
  EXPECT_EQ(messages(send(a, {bind("bad"), empty_msg('S')})), (V{"B bad", "S"}));  // the server says 26000
}

TEST_F(Fixture, MessagesSkippedAfterAnErrorAreUndone) {
  Side a;
  send(a, {parse("keep", "select 1"), empty_msg('S')});
  answer(a, "1Z");
  // an error, then a Parse and a Close the server skips: neither takes effect
  send(a, {parse("", "select 1/0"), bind(""), empty_msg('E'), parse("late", "select 2"), close_stmt("keep"),
           empty_msg('S')});
  EXPECT_EQ(messages(answer(a, "12EZ")), (V{"1", "2", "E 42601", "Z"}));
  EXPECT_EQ(a.client.find("late"), nullptr);
  EXPECT_NE(a.client.find("keep"), nullptr);
  EXPECT_EQ(server.size(), 1u);
}

TEST_F(Fixture, DuplicateNameIsAnErrorInItsPlace) {
  Side a;
  send(a, {parse("s1", "select 1"), empty_msg('S')});
  answer(a, "1Z");
  auto out = send(a, {parse("s1", "select 2"), bind("s1"), empty_msg('E'), empty_msg('S')});
  EXPECT_EQ(messages(out), (V{"D S _keel_none", "B _keel_1", "E", "S"}));
  EXPECT_EQ(messages(answer(a, "EZ")), (V{"E 42P05", "Z"}));
}

TEST_F(Fixture, CloseIsAnsweredByKeelAndTheServerKeepsTheStatement) {
  Side a;
  send(a, {parse("s1", "select 1"), empty_msg('S')});
  answer(a, "1Z");
  EXPECT_EQ(messages(send(a, {close_stmt("s1"), empty_msg('S')})), (V{"S"}));
  EXPECT_EQ(messages(answer(a, "Z")), (V{"3", "Z"}));
  EXPECT_EQ(a.client.find("s1"), nullptr);
  EXPECT_EQ(server.size(), 1u);
}

TEST_F(Fixture, OnlyKeelsAnswersOwedSendsANudge) {
  Side a, b;
  send(a, {parse("x", "select 1"), empty_msg('S')});
  answer(a, "1Z");
  EXPECT_EQ(messages(send(b, {parse("y", "select 1"), empty_msg('H')})), (V{"H", "C S _keel_none", "H"}));
  EXPECT_EQ(messages(answer(b, "3")), (V{"1"}));
  EXPECT_TRUE(b.exchange.empty());
}

TEST_F(Fixture, EvictionClosesTheLeastRecentlyUsedBetweenTransactions) {
  capacity = 2;
  Side a;
  send(a, {parse("a", "select 'a'"), parse("b", "select 'b'"), empty_msg('S')});
  answer(a, "11Z");
  EXPECT_EQ(messages(send(a, {parse("c", "select 'c'"), empty_msg('S')})), (V{"P _keel_3", "S"}));
  EXPECT_EQ(a.counters.evictions, 1u);
  EXPECT_EQ(server.orphans, std::vector<std::string>{"_keel_1"});
  EXPECT_EQ(messages(answer(a, "1Z")), (V{"1", "Z"}));
  // a is still the client's: used again, it is prepared again (evicting b); _keel_1 is closed first
  EXPECT_EQ(messages(send(a, {bind("a"), empty_msg('S')})), (V{"C S _keel_1", "P _keel_4", "B _keel_4", "S"}));
  EXPECT_EQ(messages(answer(a, "312Z")), (V{"2", "Z"}));
  EXPECT_EQ(server.size(), 2u);
}

TEST_F(Fixture, NoCloseInsideATransaction) {
  capacity = 1;
  Side a;
  send(a, {parse("a", "select 'a'"), parse("b", "select 'b'"), empty_msg('S')});
  answer(a, "11Z");
  tx = 'T';
  EXPECT_EQ(messages(send(a, {bind("a"), empty_msg('S')})), (V{"P _keel_3", "B _keel_3", "S"}));
  answer(a, "12Z");
  EXPECT_EQ(server.orphans.size(), 2u);
  tx = 'I';
  EXPECT_EQ(messages(send(a, {empty_msg('S')})), (V{"C S _keel_1", "C S _keel_2", "S"}));
}

TEST_F(Fixture, AbortedTransactionSendsTheParse) {
  Side a, b;
  send(a, {parse("x", "select 1"), empty_msg('S')});
  answer(a, "1Z");
  tx = 'E';
  EXPECT_EQ(messages(send(b, {parse("y", "select 1"), empty_msg('S')})), (V{"P _keel_2", "S"}));
  EXPECT_EQ(messages(answer(b, "EZ")), (V{"E 42601", "Z"}));
  EXPECT_EQ(b.client.find("y"), nullptr);
  EXPECT_NE(server.find(*std::make_shared<const Statement>(std::string_view("select 1\0\0\0", 11))), nullptr);
}

TEST_F(Fixture, DiscardAllForgetsEverything) {
  Side a;
  send(a, {parse("s1", "select 1"), empty_msg('S')});
  answer(a, "1Z");
  std::string q;
  protocol::Encoder(q).query("discard all");
  send(a, {q});
  std::string done;
  protocol::Encoder(done).command_complete("DISCARD ALL");
  std::string before, after;
  a.exchange.on_server('C', std::string_view(done).substr(5), server, before, after);
  EXPECT_EQ(a.client.find("s1"), nullptr);
  EXPECT_EQ(server.size(), 0u);
}

TEST(PassesAsIs, OnlyMessagesThatNeedNoRenaming) {
  using E = std::optional<Expect>;
  auto body = [](const std::string& m) { return std::string_view(m).substr(5); };
  EXPECT_EQ(passes_as_is('P', body(parse("", "select 1"))), E(Expect::parse));
  EXPECT_EQ(passes_as_is('P', body(parse("s1", "select 1"))), E());
  EXPECT_EQ(passes_as_is('P', ""), E());  // malformed: rewrite_client_message lets the server say so
  EXPECT_EQ(passes_as_is('B', body(bind(""))), E(Expect::bind));
  EXPECT_EQ(passes_as_is('B', body(bind("s1"))), E());
  std::string named_portal;
  protocol::Encoder(named_portal).begin('B').cstr("p1").cstr("").i16(0).i16(0).i16(0).end();
  EXPECT_EQ(passes_as_is('B', body(named_portal)), E(Expect::bind));
  std::string both_named;
  protocol::Encoder(both_named).begin('B').cstr("p1").cstr("s1").i16(0).i16(0).i16(0).end();
  EXPECT_EQ(passes_as_is('B', body(both_named)), E());
  EXPECT_EQ(passes_as_is('B', std::string_view("p1", 2)), E());  // names not all in yet
  EXPECT_EQ(passes_as_is('B', std::string_view("p1\0", 3)), E());
  auto describe = [](char what, std::string_view name) {
    std::string m;
    protocol::Encoder(m).begin('D').i8(what).cstr(name).end();
    return m;
  };
  EXPECT_EQ(passes_as_is('D', body(describe('P', ""))), E(Expect::describe));
  EXPECT_EQ(passes_as_is('D', body(describe('P', "p1"))), E(Expect::describe));
  EXPECT_EQ(passes_as_is('D', body(describe('S', ""))), E(Expect::describe));
  EXPECT_EQ(passes_as_is('D', body(describe('S', "s1"))), E());
  EXPECT_EQ(passes_as_is('E', body(empty_msg('E'))), E(Expect::execute));
  EXPECT_EQ(passes_as_is('S', body(empty_msg('S'))), E(Expect::sync));
  EXPECT_EQ(passes_as_is('C', body(close_stmt(""))), E());
  std::string q;
  protocol::Encoder(q).query("select 1");
  EXPECT_EQ(passes_as_is('Q', body(q)), E());
}

TEST_F(Fixture, DiscardOrDeallocateAllByExecuteForgetsEverything) {
  // The CommandComplete answers an Execute: the common answer, matched by on_server's shortcut,
  // which must still see what it says.
  for (const char* tag : {"DISCARD ALL", "DEALLOCATE ALL"}) {
    Side a;
    send(a, {parse("s1", "select 1"), empty_msg('S')});
    answer(a, "1Z");
    ASSERT_NE(a.client.find("s1"), nullptr);
    send(a, {parse("", "discard all"), bind(""), empty_msg('E'), empty_msg('S')});
    answer(a, "12");
    std::string done;
    protocol::Encoder(done).command_complete(tag);
    std::string before, after;
    a.exchange.on_server('C', std::string_view(done).substr(5), server, before, after);
    EXPECT_EQ(a.client.find("s1"), nullptr) << tag;
    EXPECT_EQ(server.size(), 0u) << tag;
    answer(a, "Z");
    EXPECT_TRUE(a.exchange.empty()) << tag;
  }
}

}  // namespace
}  // namespace keel::prepared
