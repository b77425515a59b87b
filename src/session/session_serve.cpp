// The ready phase, client side: split client bytes into messages, attach a server when one is
// needed, forward in batches, keep the accounting that tells the pump when the server is free.
//
// Accounting rules (protocol-flow: Extended Query, COPY):
// - Query, FunctionCall and Sync each earn one ReadyForQuery: pending_ counts them.
// - Parse/Bind/Describe/Close/Execute leave state on the server until a Sync: unsynced_.
// - The server ignores Sync and Flush during COPY IN; libpq sends a Sync right after an
//   extended-query COPY and another after CopyDone. Syncs sent since the COPY's Execute are
//   therefore taken off pending_ when the client ends the COPY (CopyDone/CopyFail).
// - COPY data may come before the server's CopyInResponse (pipelined behind the statement).
// - Invariant: every byte forwarded leaves pending_ > 0, unsynced_ or copy_in_ set, so the pump
//   never releases a server connection while client bytes for it are in flight. Flush and COPY
//   messages that would break this (nothing outstanding) are no-ops for the server and dropped.
#include <cstring>
#include <tuple>

#include "admin/console.hpp"
#include "core/log.hpp"
#include "net/edge_io.hpp"
#include "protocol/encoder.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"
#include "session/runtime.hpp"
#include "session/session.hpp"
#include "session/worker_context.hpp"

namespace keel::session {

namespace {
bool valid_type(char t) { return protocol::is_frontend_type(t) && t != 'p'; }
}  // namespace

struct Session::Reader {
  Buffer buf;
  size_t rd = 0;   ///< next unparsed byte
  size_t wr = 0;   ///< end of valid bytes
  size_t fwd = 0;  ///< start of parsed bytes not yet forwarded (all for the attached server)
  uint32_t cont = 0;          ///< body bytes still owed by a streamed (large) message
  bool cont_forward = false;  ///< ... and whether they go to the server or are dropped
  bool want_more = false;     ///< the message at rd must be read further before it is handled
  protocol::Frame frame;      ///< the frame being handled
  Gather out;  ///< keel's bytes in place of or besides the client's; [fwd, rd) follows them
};

/// What keel decided about one client message before it goes to the server.
struct Session::Decision {
  EffectPtr effect;  ///< transaction mode: what a Query/Parse does to session state (null: nothing)
  bool carry = false;                            ///< ... a SET keel carries for the client
  bool rejected = false;                         ///< ... refused: it would pin (session_state = reject)
  bool decided = false;                          ///< decide() has run
};

awaitable<bool> Session::serve(std::vector<uint8_t>& leftover, bool woken) {
  Reader r;
  auto& buffers = ctx_.worker().buffers();
  if (!leftover.empty()) {
    r.buf = buffers.get();
    std::memcpy(r.buf.data(), leftover.data(), leftover.size());
    r.wr = leftover.size();
  }
  std::vector<uint8_t>().swap(leftover);
  const uint32_t max_msg = cfg_->max_message_size;
  bool keep = true;
  while (keep) {
    if (r.rd == r.wr) r.rd = r.wr = r.fwd = 0;
    if (r.wr == 0 && r.cont == 0 && ((!r.buf && !woken) || park_next_)) {
      // Idle (at the start, or the sweep found the client quiet): park without a buffer and
      // without this coroutine (park()). A busy client reads straight into its buffer.
      park_next_ = false;
      co_return true;
    }
    if (!r.buf) r.buf = buffers.get();
    if (r.rd > 0 && r.wr == BufferPool::kSize) {
      std::memmove(r.buf.data(), r.buf.data() + r.rd, r.wr - r.rd);
      r.wr -= r.rd;
      r.rd = r.fwd = 0;
    }
    bool force = std::exchange(kick_reader_, false);
    auto space = asio::buffer(r.buf.data() + r.wr, BufferPool::kSize - r.wr);
    net::ReadNow got;
    // Just unparked: the bytes that woke the reader are there. Read in place, they need no
    // completion posted (and the scheduler no extra epoll poll). Only then: a client that keeps
    // sending must not keep its worker from the other sessions.
    if (woken) got = net::read_now(client_, space, std::exchange(force, false));
    if (got.waits()) {
      parked_ = buffered_wait_ = r.wr == 0 && r.cont == 0;
      reading_ = true;
      std::tie(got.ec, got.n) = co_await net::async_read_edge(client_, space, nothrow, force);
      parked_ = buffered_wait_ = reading_ = false;
    }
    const error_code ec = got.ec;
    const size_t n = got.n;
    check_reader_ = true;
    woken = false;
    if (ec == asio::error::operation_aborted && !closing_ && (park_next_ || idle_killed_ || kick_reader_)) {
      if (idle_killed_) {
        co_await end_idle();
        break;
      }
      continue;  // the sweep asks us to give the buffer back
    }
    if (ec || closing_) break;
    last_activity_ = coarse_now();
    r.wr += n;
    for (;;) {
      r.frame = protocol::next_frame(r.buf.data() + r.rd, r.wr - r.rd, r.cont, BufferPool::kSize, max_msg);
      auto& f = r.frame;
      if (f.kind == protocol::Frame::Kind::need_more) {
        // Judge the type as soon as the header is in, not after waiting for a body that a
        // confused client may never send (a second startup packet, garbage).
        if (r.cont == 0 && r.wr - r.rd >= 5 && !valid_type(char(r.buf.data()[r.rd]))) {
          Decision d;
          co_await on_client_message(r, char(r.buf.data()[r.rd]), d);  // always FATAL
          keep = false;
        }
        break;
      }
      if (f.kind == protocol::Frame::Kind::error) {
        keep = false;
        co_await flush(r);  // what was taken before it is owed answers
        co_await finish_reader();
        PgError e = PgError::fatal(sqlstate::protocol_violation, "message exceeds max_message_size");
        if (f.length < 4) e.message = "invalid message length";
        co_await fatal(e);
        co_return false;
      }
      if (f.kind == protocol::Frame::Kind::tail) {
        if (!r.cont_forward) {
          if (!co_await flush(r)) { keep = false; break; }
          r.fwd = r.rd + f.size;
        }
        r.rd += f.size;
        continue;
      }
      Decision d;
      if (!client_message_now(r, f.type, d) && !co_await on_client_message(r, f.type, d)) { keep = false; break; }
      if (r.want_more) { r.want_more = false; break; }
    }
    if (keep) keep = co_await flush(r);
    if (keep && r.rd > 0 && r.rd < r.wr) {
      // Keep the partial message at the front; the buffer is reused for the next read.
      std::memmove(r.buf.data(), r.buf.data() + r.rd, r.wr - r.rd);
      r.wr -= r.rd;
      r.rd = r.fwd = 0;
    }
  }
  co_await finish_reader();
  co_return false;
}

/// The reader waits for an idle client with no coroutine and no buffer: one wait op on the
/// socket holds the session. Bytes (or an error, a kick, an idle timeout) bring serving back.
void Session::park() {
  pump_wake_.give(false);  // an idle client holds no pump either
  if (!pump_running_) {
    scratch_.reset();
    if (ledger_ && ledger_->unused()) ledger_.reset();
  }
  parked_ = reading_ = true;
  bool force = std::exchange(kick_reader_, false);
  // An edge wait: the epoll event for the client's next bytes ends it with no peek (serve() reads
  // them). An edge whose bytes an earlier read took wakes it for nothing: the reader then waits
  // with its buffer until the sweep parks it again.
  net::async_wait_edge(client_, [self = shared_from_this()](error_code ec, std::size_t) {
    self->parked_ = self->reading_ = false;
    if (ec == asio::error::operation_aborted && self->kick_reader_ && !self->closing_) return self->park();
    self->spawn(&Session::unpark, ec);
  }, force);
}

awaitable<void> Session::unpark(error_code ec) {
  if (!ec && !closing_) {
    std::vector<uint8_t> none;
    if (co_await serve(none, true)) co_return park();
  } else {
    if (idle_killed_ && !closing_) co_await end_idle();
    co_await finish_reader();
  }
  error_code cec;
  net::settle(client_);
  client_.close(cec);
}

/// client_idle_timeout has passed: tell the client why (unless the pump is writing to it).
awaitable<void> Session::end_idle() {
  if (pump_writing_) co_return;
  co_await fatal(PgError::fatal(sqlstate::idle_session_timeout, "terminating connection due to client_idle_timeout"));
}

/// Forwards [fwd, rd) to the attached server. Precondition: bytes there only while attached.
awaitable<bool> Session::flush(Reader& r) {
  if (track_statements_ && server_) {
    // keel's answers alone are owed: make the server answer something so the pump sends them.
    prepared::Counters c;
    auto ctx = statement_context(c);
    size_t from = r.out.added().size();
    prepared::nudge_if_needed(ctx, r.out.added());
    stage(r, from);
  }
  if (r.out.empty() && r.fwd == r.rd) co_return !closing_;
  const auto& iov = r.out.buffers(r.buf.data(), r.fwd, r.rd);
  r.fwd = r.rd;
  error_code ec;
  if (server_) {
    net::WriteNow w = net::write_now(server_->sock, iov);
    ec = w.ec;
    if (!w.finished()) ec = co_await net::write_rest(server_->sock, iov, w);
  }
  r.out.clear();
  co_return !ec && !closing_;
}

/// `RESET name` (or SET name TO DEFAULT) of a carried parameter the client gave at startup:
/// the server connection's own default is keel's, so the statement becomes `SET name TO
/// '<startup value>'`, which is what RESET means on a direct connection (transactional alike);
/// the pump renames its CommandComplete back to RESET.
void Session::reset_to_startup(Reader& r, sql::SessionStateDelta& effect) {
  const std::string* v = find_param(startup_, effect.carried_param);
  if (!v) return;  // no startup value: the server's default is the client's too
  size_t from = r.out.added().size();
  protocol::Encoder(r.out.added()).query("SET " + effect.carried_param + " TO " + sql::quote_literal(*v));
  stage(r, from, r.frame.size);
  if (effect.reset_tag) ledger().retags.push_back(zs_ + uint64_t(pending_) + 1);
  effect.param_reset = false;
  effect.carried_value = *v;
}

/// Adds what keel wrote to r.out.added() since `from` to the output, after the client's bytes up
/// to r.rd; the first `skip` bytes of the message at r.rd are left out (it is replaced).
void Session::stage(Reader& r, size_t from, size_t skip) {
  if (r.out.added().size() == from && skip == 0) return;
  r.out.run(r.fwd, r.rd);
  r.fwd = r.rd + skip;
  r.out.take_added(from);
}

prepared::Context Session::statement_context(prepared::Counters& c) {
  size_t cap = size_t(db_->pool.max_prepared_statements);
  Ledger& l = ledger();
  return prepared::Context{l.statements, server_->statements, l.exchange, cap, tx_status_,
                           tx_status_ == 'I' && settled(), c};
}

void Session::count(const prepared::Counters& c) {
  if (c.parses) pool_->stats().prepares.add(int64_t(c.parses));
  if (c.reused) pool_->stats().prepare_reuses.add(int64_t(c.reused));
  if (c.evictions) pool_->stats().prepare_evictions.add(int64_t(c.evictions));
}

/// Transaction mode: renames the client's named statements for the attached server (see
/// src/prepared/rewrite.hpp). Returns false when the message must be read further first.
bool Session::rewrite_statements(Reader& r, char type, const sql::SessionStateDelta* effect) {
  const auto& f = r.frame;
  if (f.kind == protocol::Frame::Kind::whole && server_->statements.orphans.empty()) {
    // Most of the traffic (Execute, Sync, the unnamed statement) only queues its answer: what
    // rewrite_client_message does for it when there is no orphan to close first, without the
    // context around it.
    std::string_view body(reinterpret_cast<const char*>(r.buf.data() + r.rd + 5), f.size - 5);
    if (auto plain = prepared::passes_as_is(type, body)) {
      ledger().exchange.push(*plain);
      return true;
    }
  }
  std::string_view msg(reinterpret_cast<const char*>(r.buf.data() + r.rd), f.size);
  prepared::Counters c;
  auto ctx = statement_context(c);
  size_t from = r.out.added().size();
  size_t skip = 0;
  if (type == 'Q' && effect && effect->statements == 1 && effect->deallocated.size() == 1 &&
      prepared::rewrite_deallocate(effect->deallocated[0], ctx, r.out.added())) {
    skip = f.size;
  } else {
    bool need_more = false;
    skip = prepared::rewrite_client_message(type, msg, f.length, ctx, r.out.added(), need_more).skip;
    if (type == 'P' && f.kind == protocol::Frame::Kind::head) {
      // Too large to rename: it creates the client's own name on this server, which pins.
      std::string_view b = msg.substr(5);
      size_t pos = 0;
      if (auto name = protocol::read_cstr(b, pos); name && !name->empty()) {
        bool was = pins_.pinned();
        pins_.prepared(*name);
        count_pin_change(was);
      }
    }
    if (need_more) {
      if (r.rd > 0 || r.wr < BufferPool::kSize) {
        r.cont = 0;  // read the head of this message again, with more of it
        r.want_more = true;
        return false;
      }
      ledger().exchange.push(prepared::Expect::bind);  // names longer than a buffer: the server judges it
    }
  }
  count(c);
  stage(r, from, skip);
  return true;
}

namespace {
bool needs_server(char t) {
  switch (t) {
    case 'Q': case 'F': case 'P': case 'B': case 'D': case 'C': case 'E': case 'S':
      return true;
    default:
      return false;
  }
}
}  // namespace

/// Judges a message's effect on session state (Query/Parse); nothing is changed yet.
void Session::decide(Reader& r, char type, Decision& d) const {
  const auto& f = r.frame;
  if (f.kind == protocol::Frame::Kind::whole && (mode_ == config::PoolMode::transaction || type == 'Q'))
    d.effect = session_effect(type, r.buf.data() + r.rd + 5, f.size - 5);
  auto& effect = d.effect;
  if (effect && mode_ == config::PoolMode::session) {
    // Session mode looks only for RESET of a carried parameter (below); nothing pins.
    if (!effect->param_reset || effect->statements != 1) effect.reset();
    else {
      sql::SessionStateDelta reset;
      reset.statements = 1;
      reset.carried_param = std::move(effect->carried_param);
      reset.param_reset = true;
      reset.reset_tag = effect->reset_tag;
      *effect = std::move(reset);
    }
  }
  if (effect && !effect->carried_param.empty()) {
    // SET/RESET of a parameter keel carries: outside a transaction, with nothing in flight,
    // its effect is known once the server says ReadyForQuery without an error. Else: pin.
    d.carry = tx_status_ == 'I' && effect->statements == 1 && pending_ == 0 && !unsynced_ && !copy_in_ &&
              mode_ == config::PoolMode::transaction;
    // (reportable ones need nothing: the server's ParameterStatus tells their value)
    if (!d.carry && !is_reportable(effect->carried_param) && mode_ == config::PoolMode::transaction)
      effect->session_set = true;
  }
  d.rejected = effect && db_->pool.reject_session_state && would_pin(*effect);
  d.decided = true;
}

/// The common case, without suspending: an ordinary message for the attached server (or one
/// that needs none). False, with nothing changed but `d`, when on_client_message() must
/// handle it (the console, errors, drops, rejections, attaching a server).
bool Session::client_message_now(Reader& r, char type, Decision& d) {
  if (!protocol::is_frontend_type(type) || type == 'p' || type == 'X' || admin_ || discard_until_sync_) return false;
  switch (type) {
    case 'd': case 'c': case 'f': case 'H':
      if (!server_ || settled()) return false;  // dropped
      break;
    default:
      decide(r, type, d);
      if (d.rejected) return false;
      if (!server_) {
        if (!needs_server(type)) return false;
        pool::ServerConnPtr c = pool_->try_acquire();
        if (!c) return false;  // wait for one (ensure_server)
        attach(r, std::move(c));
      }
  }
  forward(r, type, d);
  return true;
}

/// Handles the message whose header is at r.rd (whole, or the head of a streamed one) when
/// client_message_now() did not; `d` is what it decided, if it got that far.
/// Returns false when the reader must stop (Terminate, FATAL, client or server gone).
awaitable<bool> Session::on_client_message(Reader& r, char type, Decision& d) {
  const auto& f = r.frame;
  auto drop = [&]() -> awaitable<bool> {
    if (!co_await flush(r)) co_return false;
    r.rd += f.size;
    r.fwd = r.rd;
    if (f.kind == protocol::Frame::Kind::head) r.cont_forward = false;
    co_return true;
  };
  if (!protocol::is_frontend_type(type) || type == 'p') {
    co_await flush(r);
    co_await finish_reader();
    // (No conditional expressions inside co_await: GCC 12 destroys their temporaries twice.)
    std::string why = "unexpected password message";
    if (type != 'p') why = fmt::format("invalid frontend message type {}", int(uint8_t(type)));
    PgError e = PgError::fatal(sqlstate::protocol_violation, std::move(why));
    co_await fatal(e);
    co_return false;
  }
  if (type == 'X') {
    co_await flush(r);
    co_return false;
  }
  if (admin_ || discard_until_sync_) {
    bool whole = f.kind == protocol::Frame::Kind::whole;
    std::string sql;
    if (admin_ && type == 'Q' && whole && f.size > 6)
      sql.assign(reinterpret_cast<const char*>(r.buf.data() + r.rd + 5), f.size - 6);
    if (!co_await drop()) co_return false;
    std::string out;
    protocol::Encoder enc(out);
    if (type == 'S') {
      discard_until_sync_ = false;
      enc.ready_for_query('I');
    } else if (admin_ && type == 'Q') {
      co_await admin_query(sql);
      co_return true;
    } else if (admin_ && !discard_until_sync_ && needs_server(type)) {
      enc.error_response(PgError::error(sqlstate::feature_not_supported, "the admin console supports simple queries only"));
      discard_until_sync_ = true;
    }
    if (out.empty()) co_return true;
    co_return co_await send(out);
  }
  switch (type) {
    case 'd': case 'c': case 'f':
      // Clients may send COPY data right behind the COPY statement, before CopyInResponse
      // (asyncpg does): forward it while anything is owed; the server ignores COPY messages
      // outside COPY, as the protocol says. With nothing owed they would have no answer: dropped.
      if (!server_ || settled()) co_return co_await drop();
      break;
    case 'H':
      if (!server_ || settled()) co_return co_await drop();
      break;
    default:
      if (!d.decided) decide(r, type, d);
      if (d.rejected) {
        PgError e = PgError::error(sqlstate::feature_not_supported,
                                   "this statement leaves session state on the server connection, which "
                                   "transaction pooling cannot keep (session_state = reject)");
        e.hint = "Use session pool mode for this client, or set session_state = \"pin\".";
        if (type != 'Q' && server_ && track_statements_) {
          // In order with what the server still owes, and the server skips to Sync as for its own.
          size_t from = r.out.added().size();
          prepared::stand_in_error(e, ledger().exchange, r.out.added());
          stage(r, from, f.size);
          r.rd += f.size;
          account('D');
          co_return true;
        }
        if (!co_await drop()) co_return false;
        std::string out;
        protocol::Encoder enc(out);
        enc.error_response(e);
        if (type == 'Q') enc.ready_for_query(tx_status_);
        else discard_until_sync_ = true;
        while (pump_writing_) co_await pump_signal_.wait();  // the pump is the writer while attached
        co_return co_await send(out);
      }
      if (!server_ && needs_server(type)) {
        bool ok = co_await ensure_server(r, type);
        if (!ok) co_return false;
      }
      if (!server_) co_return true;  // answered with an error; the message was dropped
  }
  forward(r, type, d);
  co_return true;
}

/// Passes the message at r.rd on to the attached server: statement renaming, pins, carried
/// parameters, the exchange's accounting.
void Session::forward(Reader& r, char type, Decision& d) {
  const auto& f = r.frame;
  auto& effect = d.effect;
  if (track_statements_ && server_) {
    if (!rewrite_statements(r, type, effect.get())) return;  // r.want_more: handled after the next read
    if (type == 'C' && f.kind == protocol::Frame::Kind::whole && !pins_.statements.empty())
      track_statement_names(type, r.buf.data() + r.rd + 5, f.size - 5);  // closing a name that pins
  } else if (f.kind == protocol::Frame::Kind::whole && (type == 'P' || type == 'C') &&
             mode_ == config::PoolMode::transaction) {
    track_statement_names(type, r.buf.data() + r.rd + 5, f.size - 5);
  }
  if (type == 'Q' && effect && effect->param_reset && effect->statements == 1 && server_)
    reset_to_startup(r, *effect);
  if (d.carry && server_)  // its ReadyForQuery comes after those owed now (the sync query's too)
    ledger().carries.push_back({zs_ + uint64_t(pending_) + 1, effect->carried_param, effect->carried_value, effect->param_reset});
  if (effect) apply_session_effect(*effect);
  account(type);
  r.rd += f.size;
  if (f.kind == protocol::Frame::Kind::head) r.cont_forward = true;
}

namespace {
std::optional<std::string_view> statement_text(char type, const uint8_t* body, size_t len) {
  std::string_view b(reinterpret_cast<const char*>(body), len);
  size_t pos = 0;
  if (type == 'P' && !protocol::read_cstr(b, pos)) return std::nullopt;  // statement name
  return protocol::read_cstr(b, pos);
}
}  // namespace

EffectPtr Session::session_effect(char type, const uint8_t* body, size_t len) const {
  if (type != 'Q' && type != 'P') return nullptr;
  auto text = statement_text(type, body, len);
  // Most statements stop here. A Parse's text comes again and again (parameters travel apart),
  // so the worker remembers those it cleared; simple queries carry their literals: scanned.
  if (!text) return nullptr;
  bool maybe = type == 'P' ? ctx_.statement_filter().may_touch(*text) : sql::may_touch_session_state(*text);
  if (!maybe) return nullptr;
  return std::make_unique<sql::SessionStateDelta>(sql::classify_session_state(*text));
}

bool Session::would_pin(const sql::SessionStateDelta& d) const {
  sql::SessionPins p = pins_;
  p.apply(d);
  return p.pinned() && !pins_.pinned();
}

/// Transaction mode: state that cannot move between server connections pins the client to the
/// one it has until the state is gone (UNLISTEN *, unlock, DISCARD, DEALLOCATE, CLOSE ...).
void Session::apply_session_effect(const sql::SessionStateDelta& d) {
  bool was = pins_.pinned();
  pins_.apply(d);
  count_pin_change(was);
}

/// Named statements keel does not rename (max_prepared_statements = 0, or a Parse larger than a
/// buffer) exist under the client's own name on its server connection: it stays pinned to it
/// until it closes them.
void Session::track_statement_names(char type, const uint8_t* body, size_t len) {
  bool was = pins_.pinned();
  std::string_view b(reinterpret_cast<const char*>(body), len);
  size_t pos = type == 'C' ? 1 : 0;
  auto name = protocol::read_cstr(b, pos);
  if (!name) return;
  if (type == 'P' && !name->empty()) pins_.prepared(*name);
  if (type == 'C' && b[0] == 'S') pins_.closed(*name);
  count_pin_change(was);
}

void Session::count_pin_change(bool was_pinned) {
  if (pins_.pinned() == was_pinned) return;
  pool_->stats().cl_pinned.add(was_pinned ? -1 : 1);
  if (!was_pinned) {
    pool_->stats().pins.add();
    KEEL_DEBUG(ids(), "pinned to server pid {}", server_ ? server_->pid : 0);
  }
}

/// Attaches a server connection for a message that needs one. On failure the message is
/// dropped and the client gets the error at the point PostgreSQL would give it: at once with
/// ReadyForQuery for Query/FunctionCall/Sync, else after skipping to the next Sync.
awaitable<bool> Session::ensure_server(Reader& r, char type) {
  auto res = co_await pool_->acquire();
  if (closing_) co_return false;
  if (res) {
    attach(r, std::move(res.value()));
    co_return true;
  }
  const auto& f = r.frame;
  r.rd += f.size;
  r.fwd = r.rd;
  if (f.kind == protocol::Frame::Kind::head) r.cont_forward = false;
  std::string out;
  protocol::Encoder enc(out);
  PgError e = res.take_error();
  e.severity = Severity::error;
  enc.error_response(e);
  if (type == 'Q' || type == 'F' || type == 'S') enc.ready_for_query('I');
  else discard_until_sync_ = true;
  co_return co_await send(out);
}

/// Takes the server connection and starts the pump. The connection is brought to the client's
/// session parameters first: a query ahead of the client's own bytes, in the same write, whose
/// replies the pump swallows.
void Session::attach(Reader& r, pool::ServerConnPtr c) {
  server_ = std::move(c);
  pump_running_ = true;
  drain_started_ = false;
  if (std::string sql = sync_sql(wanted_, server_->settings, pool_->server_params()); !sql.empty()) {
    KEEL_DEBUG(ids(), "sync: {}", sql);
    size_t from = r.out.added().size();
    protocol::Encoder(r.out.added()).query(sql);
    stage(r, from);
    ++injected_;
    ++pending_;
  }
  // The pump of the last transaction takes it, here and now: it runs only up to its read of the
  // server (queued, since nothing was sent yet), with no posted completion (see net::Handoff).
  if (pump_wake_.waiting()) pump_wake_.give_now(true);
  else spawn(&Session::pump);
}

void Session::account(char type) {
  switch (type) {
    case 'Q':
    case 'F':
      ++pending_;
      syncs_since_cmd_ = 0;
      last_cmd_extended_ = false;
      pool_->stats().query_count.add();
      break;
    case 'S':
      ++pending_;
      unsynced_ = false;
      ++syncs_since_cmd_;
      break;
    case 'E':
      unsynced_ = true;
      syncs_since_cmd_ = 0;
      last_cmd_extended_ = true;
      pool_->stats().query_count.add();
      break;
    case 'P': case 'B': case 'D': case 'C':
      unsynced_ = true;
      break;
    case 'c': case 'f':
      pending_ = std::max(0, pending_ - syncs_since_cmd_);
      syncs_since_cmd_ = 0;
      copy_in_ = false;
      if (last_cmd_extended_) unsynced_ = true;
      break;
    default:
      break;
  }
}

awaitable<void> Session::admin_query(std::string_view sql) {
  std::vector<const BufferPool*> buffers;
  for (auto& w : ctx_.runtime().workers) buffers.push_back(&w->buffers());
  std::string out = admin::execute(ctx_.runtime().registry, buffers, sql);
  protocol::Encoder(out).ready_for_query('I');
  co_await send(out);
}

/// The reader is done: let the pump (if any) reset and return the server connection.
awaitable<void> Session::finish_reader() {
  if (reader_done_) co_return;
  reader_done_ = client_gone_ = true;
  pump_wake_.give(false);
  if (pump_running_) {
    if (pump_writing_) {
      // Give the pump a moment to finish its write so nothing we send interleaves with it.
      Timer t(client_.get_executor(), std::chrono::seconds(1));
      t.async_wait([w = weak_from_this()](error_code ec) {
        if (auto self = w.lock(); self && !ec) self->pump_signal_.notify();
      });
      while (pump_writing_ && pump_running_) {
        co_await pump_signal_.wait();
        if (Clock::now() >= t.expiry()) break;
      }
      if (pump_writing_) {
        error_code ec;
        net::settle(client_);
        client_.close(ec);
      }
    }
    if (server_) {
      error_code ec;
      server_->sock.cancel(ec);  // wakes the pump, which now drains and resets
    }
  }
}

}  // namespace keel::session
