// The ready phase, server side: forward server bytes to the client as they come (never
// re-encoded), watch ReadyForQuery and COPY responses, and release or reset the server
// connection when the exchange is over.
#include <cstring>
#include <tuple>
#include <optional>

#include "core/log.hpp"
#include "net/deadline.hpp"
#include "net/edge_io.hpp"
#include "protocol/encoder.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"
#include "session/session.hpp"
#include "session/worker_context.hpp"

namespace keel::session {

namespace {
constexpr auto kDrainTimeout = std::chrono::seconds(10);
constexpr auto kResetTimeout = std::chrono::seconds(10);
constexpr uint32_t kMaxServerMessage = 0x7fffffff;
}  // namespace

void Session::on_ready_for_query() {
  ++zs_;
  if (!ledger_) return;
  auto& retags = ledger_->retags;
  auto& carries = ledger_->carries;
  if (!retags.empty()) std::erase_if(retags, [&](uint64_t z) { return z <= zs_; });
  if (carries.empty()) return;
  for (auto& c : carries) {
    if (c.z != zs_ || error_z_ == zs_) continue;
    if (c.reset) {
      // Back to the client's startup value; the server is at its own default now.
      if (const std::string* v = find_param(startup_, c.name)) set_param(wanted_, c.name, *v);
      else sql::erase_param(wanted_, c.name);
      if (server_) sql::erase_param(server_->settings, c.name);
    } else {
      set_param(wanted_, c.name, c.value);
      if (server_) set_param(server_->settings, c.name, c.value);
    }
  }
  std::erase_if(carries, [&](const Carry& c) { return c.z <= zs_; });
}

void Session::on_injected_reply(char type, const uint8_t* body, uint32_t len) {
  if (type == 'Z') {
    on_ready_for_query();
    --injected_;
    if (pending_ > 0) --pending_;
  } else if (type == 'E' && !injected_error_) {
    error_z_ = zs_ + 1;
    if (auto e = protocol::parse_error({reinterpret_cast<const char*>(body), len}))
      injected_error_ = std::make_unique<PgError>(std::move(*e));
    else
      injected_error_ = std::make_unique<PgError>(PgError::error(sqlstate::internal_error, "malformed error from server"));
  }
}

void Session::on_server_message(char type, const uint8_t* body, uint32_t len) {
  switch (type) {
    case 'S':
      // The client changed a reportable parameter: it now wants it, and the server has it.
      if (auto ps = protocol::parse_parameter_status({reinterpret_cast<const char*>(body), len})) {
        if (auto name = tracked_param(ps->first)) {
          set_param(wanted_, *name, ps->second);
          set_param(server_->settings, *name, ps->second);
        }
      }
      break;
    case 'Z':
      on_ready_for_query();
      if (len == 1) tx_status_ = char(body[0]);
      if (pending_ > 0) --pending_;
      copy_in_ = false;
      if (tx_status_ == 'I') pool_->stats().xact_count.add();
      break;
    case 'G':
    case 'W':
      copy_in_ = true;
      break;
    case 'E':
      error_z_ = zs_ + 1;
      if (auto e = protocol::parse_error({reinterpret_cast<const char*>(body), len}); e && e->is_fatal()) {
        server_fatal_seen_ = true;
        kick_pump_ = true;  // its FIN may have come with it (no later edge): the next read looks
      }
      break;
    default:
      break;
  }
}

/// Transaction mode, inside a transaction on a connection lent for it: the pump keeps its buffer
/// while it waits for the next statement's answer, so that read is a read op (done through the
/// worker's batch, io_uring_reads) rather than an edge wait and a recv(). At most one buffer per
/// lent server connection: a client idle in a transaction holds its server connection too.
bool Session::between_statements() const {
  return mode_ == config::PoolMode::transaction && tx_status_ != 'I' && !pins_.pinned();
}

awaitable<void> Session::pump() {
  auto& buffers = ctx_.worker().buffers();
  Buffer buf;
  size_t wr = 0;
  uint32_t cont = 0;
  bool server_dead = false;
  bool fresh = true;
  std::optional<net::DeadlineGuard> drain_deadline;
  if (!scratch_) scratch_ = std::make_unique<PumpScratch>();
  auto& edited = scratch_->out;
  auto& before = scratch_->before;
  auto& after = scratch_->after;
  bool woke = false;  // an edge wait just ended: the bytes that ended it are there
  for (;;) {
    if (client_gone_ && reader_done_) {
      if (settled() && wr == 0) break;
      if (!drain_started_) {
        drain_deadline.emplace(server_->sock, Clock::now() + kDrainTimeout);
        if (!co_await start_drain()) { server_dead = true; break; }
        continue;
      }
    }
    if (wr == 0 && settled() && injected_ == 0 && !fresh && !between_statements()) {
      // Nothing owed (session mode, a pinned client): wait without a buffer. (Just started: the
      // reader is about to send what the server will answer. Between a transaction's statements:
      // the next comes at once, and a read with the buffer goes through the worker's batch.)
      buf.reset();
      pump_reading_ = true;
      bool force = std::exchange(kick_pump_, false);
      auto [ec, none] = co_await net::async_wait_edge(server_->sock, nothrow, force);
      pump_reading_ = false;
      if (ec == asio::error::operation_aborted && (client_gone_ || kick_pump_) && server_->sock.is_open()) continue;
      if (ec) { server_dead = true; break; }
      woke = true;
    }
    if (!buf) buf = buffers.get();
    fresh = false;
    bool force = std::exchange(kick_pump_, false);
    auto space = asio::buffer(buf.data() + wr, BufferPool::kSize - wr);
    net::ReadNow got;
    // After an edge wait, read in place: a read op started now would complete at once, through a
    // posted handler and one more epoll poll of the scheduler (once per statement of a session-
    // mode client's transaction). The wait suspended, so the pump does not keep its worker from
    // others.
    if (std::exchange(woke, false)) got = net::read_now(server_->sock, space, std::exchange(force, false));
    if (got.waits()) {
      pump_reading_ = true;
      std::tie(got.ec, got.n) = co_await net::async_read_edge(server_->sock, space, nothrow, force);
      pump_reading_ = false;
    }
    const error_code ec = got.ec;
    const size_t n = got.n;
    check_pump_ = true;
    if (ec == asio::error::operation_aborted && (client_gone_ || kick_pump_) && server_->sock.is_open()) continue;
    if (ec) { server_dead = true; break; }
    wr += n;
    size_t pos = 0, from = 0;  // forward [from, pos), after edited (when keel edits the stream)
    bool bad = false;
    edited.clear();
    auto cut = [&](size_t at) {
      edited.run(from, at);
      from = at;
    };
    auto add_synth = [&](std::string& s) {
      size_t at = edited.added().size();
      edited.added() += s;
      edited.take_added(at);
      s.clear();
    };
    while (pos < wr) {
      auto f = protocol::next_frame(buf.data() + pos, wr - pos, cont, BufferPool::kSize, kMaxServerMessage);
      if (f.kind == protocol::Frame::Kind::need_more) break;
      if (f.kind == protocol::Frame::Kind::error) { bad = true; break; }
      bool swallow = injected_ > 0;
      bool whole = f.kind == protocol::Frame::Kind::whole;
      const uint8_t* body = buf.data() + pos + 5;
      if (whole) {
        if (swallow) on_injected_reply(f.type, body, f.length - 4);
        else on_server_message(f.type, body, f.length - 4);
      }
      if (swallow) {
        cut(pos);
        from = pos + f.size;
      } else if (track_statements_ && f.kind != protocol::Frame::Kind::tail) {
        std::string_view b = whole ? std::string_view(reinterpret_cast<const char*>(body), f.length - 4) : std::string_view();
        auto v = ledger().exchange.on_server(f.type, b, server_->statements, before, after);
        if (!v.forward || !before.empty() || !after.empty()) {
          cut(pos);
          add_synth(before);
          if (v.forward) cut(pos + f.size);
          from = pos + f.size;
          add_synth(after);
        }
      }
      if (!swallow && whole && f.type == 'C' && ledger_ && !ledger_->retags.empty() && ledger_->retags.front() == zs_ + 1 &&
          from <= pos && f.length == 8 && std::memcmp(body, "SET", 4) == 0) {
        cut(pos);  // a RESET keel sent as SET: the client sees RESET's tag
        before.clear();
        protocol::Encoder(before).command_complete("RESET");
        add_synth(before);
        from = pos + f.size;
      }
      pos += f.size;
    }
    if (injected_error_ && !client_gone_) co_await refuse_startup_params();
    if (bad) {
      KEEL_WARN(ids(), "invalid message from server; closing it");
      server_dead = true;
      break;
    }
    if ((pos > from || !edited.empty()) && !client_gone_) {
      const auto& iov = edited.buffers(buf.data(), from, pos);
      net::WriteNow w = net::write_now(client_, iov);
      error_code wec = w.ec;
      if (!w.finished()) {
        pump_writing_ = true;
        wec = co_await net::write_rest(client_, iov, w);
        pump_writing_ = false;
        pump_signal_.notify();
      }
      if (wec) {
        // The reader may be waiting on a socket whose reset raised no edge: wake it; it ends
        // and wakes us to drain.
        client_gone_ = true;
        error_code cec;
        client_.cancel(cec);
      }
    }
    if (pos < wr) std::memmove(buf.data(), buf.data() + pos, wr - pos);
    wr -= pos;
    if (!client_gone_ && settled() && wr == 0 && tx_status_ == 'I' && mode_ == config::PoolMode::transaction &&
        !pins_.pinned()) {
      // The transaction is over and the client owes nothing: the connection goes back.
      if (ledger_ && !ledger_->exchange.empty()) {
        KEEL_WARN(ids(), "{} expected responses left at release; forgetting the connection's statements",
                  ledger_->exchange.size());
        ledger_->exchange.clear();
        server_->statements.clear();
      }
      // A FATAL that came with the transaction's end (a terminated backend, a server shutting
      // down): the server is closing this connection, which must not be lent again.
      if (std::exchange(server_fatal_seen_, false)) {
        kick_pump_ = false;  // (set for this connection's end, not the next one's first read)
        pool_->discard(std::move(server_));
      } else {
        pool_->release(std::move(server_));
      }
      pump_running_ = false;
      pump_signal_.notify();
      // Stay for the client's next transaction (attach() hands it over): no new coroutine per
      // transaction. The reader ends or parks with false. No buffer is held meanwhile.
      buf.reset();
      bool again = co_await pump_wake_.wait();
      if (!again) co_return;
      cont = 0;
      fresh = true;
    }
  }
  drain_deadline.reset();
  co_await finish_pump(server_dead);
}

/// The client's startup parameters were refused (as PostgreSQL would at login): tell it, end it.
/// Apart from pump() so that its locals do not sit in the pump's frame, which lives as long as
/// the session: kept under Asio's 1,020 bytes, that frame is recycled, not malloc'ed.
awaitable<void> Session::refuse_startup_params() {
  PgError e = std::move(*injected_error_);
  injected_error_.reset();
  e.severity = Severity::fatal;
  std::string out;
  protocol::Encoder(out).error_response(e);
  pump_writing_ = true;
  if (co_await send(out)) co_await net::all_sent(client_);
  pump_writing_ = false;
  client_gone_ = closing_ = true;
  error_code sec;
  net::settle(client_);
  client_.shutdown(Socket::shutdown_both, sec);
  client_.cancel(sec);
}

/// The client left with work outstanding: cancel what runs, end a COPY, close an open
/// extended-query exchange, so the server comes back to ReadyForQuery.
awaitable<bool> Session::start_drain() {
  drain_started_ = true;
  // Cancel what still runs, and wait until the server has taken the cancel, so it cannot land on
  // the reset or on the next client's statement. A COPY IN only waits for us: CopyFail ends it.
  if (pending_ > 0 && !copy_in_) co_await pool::cancel_request(server_->cancel_target());
  std::string out;
  protocol::Encoder enc(out);
  if (copy_in_) {
    enc.copy_fail("client disconnected");
    copy_in_ = false;
    if (last_cmd_extended_) unsynced_ = true;
  }
  if (unsynced_) {
    enc.sync();
    ++pending_;
    unsynced_ = false;
  }
  if (out.empty()) co_return true;
  error_code ec = co_await net::write_all(server_->sock, asio::buffer(out));
  co_return !ec;
}

/// The exchange is over because the client left (reset and return the connection) or the
/// server died (tell the client, close both).
awaitable<void> Session::finish_pump(bool server_dead) {
  pool::ServerConnPtr c = std::move(server_);
  if (server_dead) {
    KEEL_INFO(ids(), "server connection pid {} lost", c->pid);
    if (ledger_) ledger_->exchange.clear();
    pool_->discard(std::move(c));
    pump_running_ = false;
    pump_signal_.notify();
    if (!client_gone_) {
      client_gone_ = closing_ = true;
      if (!server_fatal_seen_) {
        std::string out;
        protocol::Encoder(out).error_response(
            PgError::fatal(sqlstate::connection_failure, "server connection lost; the transaction, if any, is lost"));
        co_await send(out);
      }
      // The FATAL (keel's, or the server's the pump forwarded) arrives before the end.
      co_await net::all_sent(client_);
      error_code ec;
      net::settle(client_);
      client_.shutdown(Socket::shutdown_both, ec);
      client_.cancel(ec);
    }
    co_return;
  }
  bool ok = true;
  auto deadline = Clock::now() + kResetTimeout;
  if (tx_status_ != 'I') ok = bool(co_await pool::run_simple(*c, "ROLLBACK", deadline));
  if (ok && (mode_ == config::PoolMode::session || pins_.pinned())) {
    // Session mode, or a pinned client: what it left on the connection goes with it.
    ok = bool(co_await pool::run_simple(*c, "DISCARD ALL", deadline));
    c->settings.clear();  // DISCARD ALL is RESET ALL too
    c->statements.clear();
  }
  tx_status_ = 'I';
  if (ledger_) ledger_->exchange.clear();
  if (ok) pool_->release(std::move(c));
  else pool_->discard(std::move(c));
  pump_running_ = false;
  pump_signal_.notify();
}

}  // namespace keel::session
