#include "prepared/rewrite.hpp"

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <utility>

#include "core/bytes.hpp"
#include "core/pg_error.hpp"
#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"

namespace keel::prepared {

namespace {

void send_close(std::string_view name, std::string& out) {
  protocol::Encoder(out).begin('C').i8('S').cstr(name).end();
}

void send_parse(std::string_view name, std::string_view body_after_name, std::string& out) {
  protocol::Encoder(out).begin('P').cstr(name).raw(body_after_name).end();
}

/// Closes the statements the server still has but keel no longer uses (evicted, or orphaned).
/// Only between transactions with nothing owed: closing a statement closes the portals made
/// from it, and a client inside a transaction may still have one.
void close_orphans(Context& ctx, std::string& out) {
  if (ctx.server.orphans.empty() || !ctx.exchange.empty() || !ctx.idle) return;
  for (auto& name : ctx.server.orphans) {
    send_close(name, out);
    Entry e;
    e.kind = Expect::inj_close;
    e.detail().server_name = std::move(name);
    ctx.exchange.push(std::move(e));
  }
  ctx.server.orphans.clear();
}

std::string add_to_server(const StatementPtr& def, Context& ctx) {
  size_t before = ctx.server.orphans.size();
  std::string name = ctx.server.add(def, ctx.capacity, ctx.server.orphans);
  ctx.counters.evictions += ctx.server.orphans.size() - before;
  return name;
}

/// The server-side name of def on this connection, preparing it there first if needed.
std::string ensure_prepared(const StatementPtr& def, Context& ctx, std::string& out) {
  if (const std::string* have = ctx.server.find(*def)) return *have;
  std::string name = add_to_server(def, ctx);
  send_parse(name, def->body, out);
  Entry e;
  e.kind = Expect::inj_parse;
  e.detail().server_name = name;
  e.d->def = def;
  ctx.exchange.push(std::move(e));
  ++ctx.counters.parses;
  return name;
}

Rewrite on_parse(std::string_view msg, Context& ctx, std::string& out) {
  std::string_view body = msg.substr(5);
  size_t pos = 0;
  auto name = protocol::read_cstr(body, pos);
  if (!name || name->empty()) {
    ctx.exchange.push(Expect::parse);
    return {};
  }
  if (ctx.client.find(*name)) {
    stand_in_error(PgError::error(sqlstate::duplicate_prepared_statement,
                                  fmt::format("prepared statement \"{}\" already exists", *name)),
                   ctx.exchange, out);
    return {msg.size()};
  }
  auto def = std::make_shared<const Statement>(body.substr(pos));
  ctx.client.set(*name, def);
  Entry e;
  EntryDetail& d = e.detail();
  d.client_name = std::string(*name);
  d.def = def;
  if (ctx.tx_status == 'E') {
    // An aborted transaction: PostgreSQL refuses the Parse, so the server must see it. Under a
    // throwaway name, since the cached one exists (closed later if it was created after all).
    e.kind = Expect::parse_new;
    e.orphan = true;
    d.server_name = ctx.server.new_name();
  } else if (ctx.server.find(*def)) {
    e.kind = Expect::synth_parse;
    ++ctx.counters.reused;
    ctx.exchange.push(std::move(e));
    return {msg.size()};
  } else {
    e.kind = Expect::parse_new;
    d.server_name = add_to_server(def, ctx);
  }
  send_parse(d.server_name, def->body, out);
  ctx.exchange.push(std::move(e));
  ++ctx.counters.parses;
  return {msg.size()};
}

Rewrite on_bind(std::string_view msg, uint32_t length, Context& ctx, std::string& out, bool& need_more) {
  std::string_view body = msg.substr(5);
  size_t pos = 0;
  auto portal = protocol::read_cstr(body, pos);
  auto stmt = portal ? protocol::read_cstr(body, pos) : std::nullopt;
  if (!stmt) {
    if (msg.size() < size_t(length) + 1) {
      need_more = true;  // the names are not all in yet
      return {};
    }
    ctx.exchange.push(Expect::bind);  // malformed: the server says so
    return {};
  }
  const StatementPtr* def = stmt->empty() ? nullptr : ctx.client.find(*stmt);
  if (!def) {
    ctx.exchange.push(Expect::bind);
    return {};
  }
  StatementPtr keep = *def;
  std::string name = ensure_prepared(keep, ctx, out);
  size_t old_prefix = 5 + pos;  // type, length, portal, statement
  uint32_t new_length = uint32_t(length - stmt->size() + name.size());
  protocol::Encoder enc(out);
  out.push_back('B');
  enc.i32(new_length).cstr(*portal).cstr(name);
  ctx.exchange.push(Expect::bind);
  return {old_prefix};
}

/// Describe or Close ('S' or 'P', then a name): the client's named statement it is about, if any.
std::optional<std::pair<std::string_view, StatementPtr>> named_statement(std::string_view msg, const Context& ctx) {
  std::string_view body = msg.substr(5);
  size_t pos = 1;
  auto name = body.empty() || body[0] != 'S' ? std::nullopt : protocol::read_cstr(body, pos);
  const StatementPtr* def = name && !name->empty() ? ctx.client.find(*name) : nullptr;
  if (!def) return std::nullopt;
  return std::make_pair(*name, *def);
}

Rewrite on_describe(std::string_view msg, Context& ctx, std::string& out) {
  auto st = named_statement(msg, ctx);
  if (!st) {
    ctx.exchange.push(Expect::describe);
    return {};
  }
  std::string server_name = ensure_prepared(st->second, ctx, out);
  protocol::Encoder(out).begin('D').i8('S').cstr(server_name).end();
  ctx.exchange.push(Expect::describe);
  return {msg.size()};
}

Rewrite on_close(std::string_view msg, Context& ctx) {
  auto st = named_statement(msg, ctx);
  if (!st) {
    ctx.exchange.push(Expect::close);
    return {};
  }
  Entry e;
  e.kind = Expect::synth_close;
  e.detail().client_name = std::string(st->first);
  e.d->def = st->second;
  ctx.client.erase(st->first);
  ctx.exchange.push(std::move(e));
  return {msg.size()};
}

}  // namespace

Rewrite rewrite_client_message(char type, std::string_view msg, uint32_t length, Context& ctx, std::string& out,
                               bool& need_more) {
  need_more = false;
  close_orphans(ctx, out);
  if (type != 'B' && msg.size() < size_t(length) + 1) {
    // Larger than a buffer: streamed as it comes, never renamed.
    if (type == 'P') ctx.exchange.push(Expect::parse);
    if (type == 'D') ctx.exchange.push(Expect::describe);
    if (type == 'C') ctx.exchange.push(Expect::close);
    return {};
  }
  if (auto plain = passes_as_is(type, msg.substr(5))) {
    ctx.exchange.push(*plain);
    return {};
  }
  switch (type) {
    case 'P': return on_parse(msg, ctx, out);
    case 'B': return on_bind(msg, length, ctx, out, need_more);
    case 'D': return on_describe(msg, ctx, out);
    case 'C': return on_close(msg, ctx);
    case 'Q': case 'F': ctx.exchange.push(Expect::query); return {};
    default: return {};  // Flush, COPY data: no response of their own
  }
}

bool rewrite_deallocate(std::string_view name, Context& ctx, std::string& out) {
  if (!ctx.client.find(name)) return false;
  // PostgreSQL's own answer (CommandComplete DEALLOCATE, or 25P02 in an aborted transaction)
  // from a statement that exists only for this query.
  protocol::Encoder(out).query("PREPARE _keel_dealloc AS SELECT; DEALLOCATE _keel_dealloc");
  Entry e;
  e.kind = Expect::query_dealloc;
  e.detail().client_name = std::string(name);
  ctx.exchange.push(std::move(e));
  return true;
}

void nudge_if_needed(Context& ctx, std::string& out) {
  if (!ctx.exchange.only_synthesized()) return;
  send_close(kAbsentName, out);
  protocol::Encoder(out).begin('H').end();  // the server sends its output on Flush or Sync only
  ctx.exchange.push(Expect::inj_close);
}

void stand_in_error(const PgError& err, Exchange& ex, std::string& out) {
  protocol::Encoder(out).begin('D').i8('S').cstr(kAbsentName).end();
  Entry e;
  e.kind = Expect::stand_in;
  e.detail().error = std::make_unique<PgError>(err);
  ex.push(std::move(e));
}

}  // namespace keel::prepared
