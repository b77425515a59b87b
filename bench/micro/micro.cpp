// Per-message costs on keel's hot path, without sockets: framing a batch of server bytes, the
// prepared-statement bookkeeping of one extended-query transaction, renaming a Bind, the look at
// a simple query's text for session state.
#include <benchmark/benchmark.h>

#include <string>

#include "prepared/rewrite.hpp"
#include "protocol/encoder.hpp"
#include "protocol/frame.hpp"
#include "sql/session_state.hpp"

namespace {

using namespace keel;

/// What PostgreSQL answers to pgbench -S -M extended, one transaction.
std::string select_reply() {
  std::string out;
  protocol::Encoder enc(out);
  enc.begin('1').end().begin('2').end();
  enc.row_description({"abalance"});
  enc.data_row({std::string("0")});
  enc.command_complete("SELECT 1").ready_for_query('I');
  return out;
}

void BM_FrameServerBatch(benchmark::State& st) {
  std::string batch;
  for (int i = 0; i < 32; ++i) batch += select_reply();
  const auto* p = reinterpret_cast<const uint8_t*>(batch.data());
  size_t messages = 0;
  for (auto _ : st) {
    uint32_t cont = 0;
    size_t pos = 0;
    while (pos < batch.size()) {
      auto f = protocol::next_frame(p + pos, batch.size() - pos, cont, 32768, 0x7fffffff);
      benchmark::DoNotOptimize(f.type);
      pos += f.size;
      ++messages;
    }
  }
  st.SetItemsProcessed(int64_t(messages));
}
BENCHMARK(BM_FrameServerBatch);

std::string msg(char type, std::string_view body = {}) {
  std::string out;
  protocol::Encoder(out).begin(type).raw(body).end();
  return out;
}

/// One pgbench -M prepared transaction through the statement bookkeeping: the client's
/// Bind/Execute/Sync renamed, the server's responses matched.
void BM_PreparedTransaction(benchmark::State& st) {
  prepared::ServerStatements server;
  prepared::ClientStatements client;
  prepared::Exchange ex(client);
  prepared::Counters counters;
  std::string parse;
  protocol::Encoder(parse).begin('P').cstr("P0_1").cstr("SELECT abalance FROM pgbench_accounts WHERE aid = $1;").i16(0).end();
  std::string bind;
  protocol::Encoder(bind).begin('B').cstr("").cstr("P0_1").i16(0).i16(1).i32(6).raw("123456").i16(0).end();
  std::string exec = msg('E', std::string("\0\0\0\0\0", 5)), sync = msg('S');
  std::string reply = select_reply().substr(5);  // no ParseComplete: the statement is prepared
  std::string out, before, after;
  bool need_more = false;
  {
    prepared::Context ctx{client, server, ex, 200, 'I', true, counters};
    prepared::rewrite_client_message('P', parse, uint32_t(parse.size() - 1), ctx, out, need_more);
    prepared::rewrite_client_message('S', sync, 4, ctx, out, need_more);
    ex.on_server('1', {}, server, before, after);
    ex.on_server('Z', "I", server, before, after);
  }
  for (auto _ : st) {
    out.clear();
    prepared::Context ctx{client, server, ex, 200, 'I', true, counters};
    prepared::rewrite_client_message('B', bind, uint32_t(bind.size() - 1), ctx, out, need_more);
    prepared::rewrite_client_message('E', exec, 8, ctx, out, need_more);
    prepared::rewrite_client_message('S', sync, 4, ctx, out, need_more);
    for (char t : std::string_view("2TDCZ")) {
      auto v = ex.on_server(t, t == 'Z' ? std::string_view("I") : std::string_view(), server, before, after);
      benchmark::DoNotOptimize(v);
    }
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_PreparedTransaction);

/// The same for an unnamed (pgbench -M extended) transaction: entries only, nothing renamed.
void BM_ExtendedTransaction(benchmark::State& st) {
  prepared::ServerStatements server;
  prepared::ClientStatements client;
  prepared::Exchange ex(client);
  prepared::Counters counters;
  std::string parse;
  protocol::Encoder(parse).begin('P').cstr("").cstr("SELECT 1").i16(0).end();
  std::string out, before, after;
  bool need_more = false;
  for (auto _ : st) {
    prepared::Context ctx{client, server, ex, 200, 'I', true, counters};
    for (char t : std::string_view("PBDES")) {
      if (t == 'P') prepared::rewrite_client_message('P', parse, uint32_t(parse.size() - 1), ctx, out, need_more);
      else prepared::rewrite_client_message(t, std::string_view("x\0\0\0\4", 5), 4, ctx, out, need_more);
    }
    for (char t : std::string_view("12TDCZ")) {
      auto v = ex.on_server(t, t == 'Z' ? std::string_view("I") : std::string_view(), server, before, after);
      benchmark::DoNotOptimize(v);
    }
  }
}
BENCHMARK(BM_ExtendedTransaction);

/// The session-state prefilter over the statements of one pgbench tpcb-like transaction, as simple
/// queries carry them (literals differ each time, so StatementFilter's memory never hits).
void BM_SessionStatePrefilterTpcb(benchmark::State& st) {
  const std::string stmts[] = {
      "BEGIN;",
      "UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 1234567;",
      "SELECT abalance FROM pgbench_accounts WHERE aid = 1234567;",
      "UPDATE pgbench_tellers SET tbalance = tbalance + -4321 WHERE tid = 123;",
      "UPDATE pgbench_branches SET bbalance = bbalance + -4321 WHERE bid = 12;",
      "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (123, 12, 1234567, -4321, "
      "CURRENT_TIMESTAMP);",
      "END;"};
  for (auto _ : st)
    for (auto& q : stmts) benchmark::DoNotOptimize(sql::may_touch_session_state(q));
}
BENCHMARK(BM_SessionStatePrefilterTpcb);

}  // namespace
