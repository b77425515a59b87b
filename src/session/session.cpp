// Session lifecycle, startup and authentication (protocol-flow: Start-up).
#include "session/session.hpp"

#include <tuple>

#include <boost/asio/read.hpp>

#include "auth/scram.hpp"
#include "core/log.hpp"
#include "net/edge_io.hpp"
#include "protocol/encoder.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"
#include "protocol/startup.hpp"
#include "session/runtime.hpp"
#include "session/worker_context.hpp"

namespace keel::session {

namespace {
constexpr uint32_t kMaxAuthMessage = 10000;
constexpr auto kParkAfter = std::chrono::seconds(1);  ///< a client quiet this long gives its read buffer back
}  // namespace

Session::Session(WorkerContext& ctx, Socket sock)
    : ctx_(ctx), client_(std::move(sock)), cfg_(ctx.runtime().config),
      id_(ctx.runtime().next_client_id.fetch_add(1, std::memory_order_relaxed)),
      last_activity_(Clock::now()), pump_signal_(client_.get_executor()) {}

Session::~Session() {
  net::settle(client_);
  if (key_pid_) ctx_.unregister_session(key_pid_);
  if (pool_ && counted_) pool_->stats().cl_active.add(-1);
  if (pool_ && pins_.pinned()) pool_->stats().cl_pinned.add(-1);
  ctx_.runtime().clients.fetch_sub(1, std::memory_order_relaxed);
}

std::string Session::ids() const { return fmt::format("w{} c{}", ctx_.id(), id_); }

void Session::start() { spawn(&Session::run); }

namespace {
struct SpawnTask {
  std::shared_ptr<Session> self;
  awaitable<void> (Session::*fn)(error_code);
  error_code ec;
  awaitable<void> operator()() const { return ((*self).*fn)(ec); }
};
}  // namespace

void Session::spawn(awaitable<void> (Session::*fn)(error_code), error_code ec) {
  asio::co_spawn(client_.get_executor(), SpawnTask{shared_from_this(), fn, ec}, asio::detached);
}

awaitable<bool> Session::send(const std::string& bytes) {
  // net::write_all's steps in place: one coroutine frame per send, not two.
  net::WriteNow w = net::write_now(client_, asio::buffer(bytes));
  if (!w.finished()) w.ec = co_await net::write_rest(client_, asio::buffer(bytes), w);
  co_return !w.ec;
}

awaitable<void> Session::fatal(const PgError& e, const std::string& before) {
  std::string out = before;
  protocol::Encoder(out).error_response(e);
  if (co_await send(out)) co_await net::all_sent(client_);  // the connection closes next
  KEEL_INFO(ids(), "closing: {} ({})", e.message, e.sqlstate);
}

awaitable<void> Session::run() {
  std::vector<uint8_t> in;
  // Registered from the start: the worker's sweep closes a login that outlasts
  // client_login_timeout (check_idle), with no timer of its own to set and cancel.
  key_pid_ = ctx_.register_session(shared_from_this());
  std::string greeting;
  Login who;
  bool ok = co_await startup(in, who);
  if (ok) ok = co_await authenticate(in, greeting, who);
  if (ok) ok = co_await attach_pool(greeting, who);
  who = {};  // the frame lives on while the client is served
  logged_in_ = true;
  if (ok) {
    if (co_await serve(in)) co_return park();  // idle from the start: no frames held
  } else {
    reader_done_ = client_gone_ = true;
  }
  error_code ec;
  net::settle(client_);
  client_.close(ec);
}

/// Reads the startup packet, answering SSLRequest/GSSENCRequest with 'N' and routing
/// CancelRequest. Returns true with `who` set when a StartupMessage was accepted.
/// (One FATAL path, so the coroutine frame holds one PgError, not one per refusal.)
awaitable<bool> Session::startup(std::vector<uint8_t>& in, Login& who) {
  for (;;) {
    auto sp = protocol::decode_startup(in.data(), in.size());
    if (sp.kind == protocol::StartupPacket::Kind::need_more) {
      if (!co_await read_login(in)) co_return false;
      continue;
    }
    std::optional<PgError> refused;
    std::string first;  ///< what goes out before the FATAL or the authentication
    if (sp.kind == protocol::StartupPacket::Kind::error) {
      refused = PgError::fatal(sqlstate::protocol_violation, std::string(sp.error));
    } else {
      in.erase(in.begin(), in.begin() + long(sp.size));
      if (sp.kind == protocol::StartupPacket::Kind::ssl_request ||
          sp.kind == protocol::StartupPacket::Kind::gss_request) {
        // TLS and GSSAPI encryption are not offered (yet): 'N', then the client goes on in clear.
        if (!co_await send("N")) co_return false;
        continue;
      }
      if (sp.kind == protocol::StartupPacket::Kind::cancel) {
        // The client's cancel connection closes once the server has taken the cancel, as it
        // does on PostgreSQL itself (see WorkerContext::route_cancel).
        co_await ctx_.route_cancel(sp.cancel_pid, sp.cancel_secret);
        co_return false;
      }
      refused = accept_startup(sp, first, who);
    }
    if (!first.empty() && !co_await send(first)) co_return false;
    if (refused) {
      co_await fatal(*refused);
      co_return false;
    }
    co_return true;
  }
}

/// A StartupMessage's parameters applied (who, wanted_, startup_): the error that
/// refuses the login, if one does; `first` gets a NegotiateProtocolVersion when the client asked
/// for a newer minor version or _pq_ options.
std::optional<PgError> Session::accept_startup(const protocol::StartupPacket& sp, std::string& first, Login& who) {
  if (sp.major != 3)
    return PgError::fatal(sqlstate::feature_not_supported,
                          fmt::format("unsupported frontend protocol {}.{}: server supports 3.0", sp.major, sp.minor));
  std::vector<std::string> unknown;
  bool bad_name = false;
  auto want_param = [&](const std::string& name, const std::string& value) {
    auto canonical = tracked_param(name);
    if (!canonical && !is_param_name(name)) {
      bad_name = true;
      return false;
    }
    set_param(wanted_, canonical ? *canonical : std::string_view(name), value);
    return true;
  };
  for (auto& [k, v] : sp.params) {
    if (k == "user") who.user = v;
    else if (k == "database") who.database = v;
    else if (k == "replication" && v != "false" && v != "off" && v != "0")
      return PgError::fatal(sqlstate::feature_not_supported, "replication connections are not supported through keel");
    else if (k.rfind("_pq_.", 0) == 0) unknown.push_back(k);
    else if (k == "options") {
      ParamList opts;
      if (!parse_options(v, opts))
        return PgError::fatal(sqlstate::feature_not_supported, "only -c name=value is supported in options");
      for (auto& [ok, ov] : opts) want_param(ok, ov);
    } else if (k != "replication") {
      want_param(k, v);
    }
  }
  if (bad_name) return PgError::fatal(sqlstate::protocol_violation, "invalid parameter name in startup packet");
  startup_ = wanted_;
  if (sp.minor > 0 || !unknown.empty()) protocol::Encoder(first).negotiate_protocol_version(0, unknown);
  if (who.user.empty())
    return PgError::fatal(sqlstate::invalid_authorization, "no PostgreSQL user name specified in startup packet");
  if (who.database.empty()) who.database = who.user;
  if (ctx_.runtime().clients.load(std::memory_order_relaxed) > cfg_->max_client_conn)
    return PgError::fatal(sqlstate::too_many_connections, "sorry, too many clients already");
  return std::nullopt;
}

/// Reads one typed message during authentication (bounded to kMaxAuthMessage bytes).
awaitable<std::optional<std::pair<char, std::string>>> Session::read_auth_message(std::vector<uint8_t>& in) {
  for (;;) {
    uint32_t cont = 0;
    auto f = protocol::next_frame(in.data(), in.size(), cont, kMaxAuthMessage, kMaxAuthMessage);
    if (f.kind == protocol::Frame::Kind::whole) {
      std::pair<char, std::string> m{f.type, std::string(reinterpret_cast<const char*>(in.data() + 5), f.size - 5)};
      in.erase(in.begin(), in.begin() + long(f.size));
      co_return m;
    }
    if (f.kind != protocol::Frame::Kind::need_more) {
      co_await fatal(PgError::fatal(sqlstate::protocol_violation, "invalid message length during authentication"));
      co_return std::nullopt;
    }
    if (!co_await read_login(in)) co_return std::nullopt;
  }
}

/// Appends the client's next bytes to `in` (start-up and authentication: small messages, read in
/// small steps, so no coroutine frame holds a large buffer). Bytes already there are taken at
/// once; else it waits. False at EOF or on an error.
awaitable<bool> Session::read_login(std::vector<uint8_t>& in) {
  constexpr size_t kStep = 512;
  const size_t have = in.size();
  in.resize(have + kStep);
  auto space = asio::buffer(in.data() + have, kStep);
  net::ReadNow got = net::read_now(client_, space);
  if (got.waits()) std::tie(got.ec, got.n) = co_await net::async_read_edge(client_, space, nothrow);
  in.resize(have + (got.ec ? 0 : got.n));
  co_return !got.ec;
}

/// SCRAM-SHA-256 against the configured verifier (or trust). An unknown user runs the same
/// exchange against a mock verifier and gets the same 28P01 as a wrong password.
awaitable<bool> Session::authenticate(std::vector<uint8_t>& in, std::string& greeting, const Login& who) {
  if (cfg_->auth_type != config::AuthType::scram_sha_256) co_return true;
  const auto* user = cfg_->user(who.user);
  std::string out;
  out.reserve(256);  // holds the server-first message too (about 100 bytes): one allocation
  protocol::Encoder(out).auth_sasl("SCRAM-SHA-256");
  if (!co_await send(out)) co_return false;
  auth::ScramServer scram(user && user->verifier ? &*user->verifier : nullptr, who.user, ctx_.runtime().mock_seed);
  std::optional<PgError> refused;
  for (int step = 0; step < 2 && !refused; ++step) {
    auto m = co_await read_auth_message(in);
    if (!m) co_return false;
    out.clear();
    // The SASL final message is held for the rest of the login's answer: the client wakes once.
    refused = sasl_step(scram, step, *m, step == 0 ? out : greeting);
    if (!refused && step == 0 && !co_await send(out)) co_return false;
  }
  if (refused) {
    co_await fatal(*refused);
    co_return false;
  }
  co_return true;
}

/// One SASL message of the client's through the exchange (`step` 0: SASLInitialResponse, 1:
/// SASLResponse): the answer encoded into `out`, or the error that ends the login.
std::optional<PgError> Session::sasl_step(auth::ScramServer& scram, int step, const std::pair<char, std::string>& m,
                                          std::string& out) {
  if (m.first != 'p') return PgError::fatal(sqlstate::protocol_violation, "expected SASL response");
  if (step == 0) {
    auto init = protocol::parse_sasl_initial(m.second);
    if (!init || init->mechanism != "SCRAM-SHA-256")
      return PgError::fatal(sqlstate::protocol_violation, "client selected an invalid SASL authentication mechanism");
    auto first = scram.handle_client_first(init->data);
    if (!first) return first.take_error();
    protocol::Encoder(out).auth_sasl_continue(*first);
  } else {
    auto final_msg = scram.handle_client_final(m.second);
    if (!final_msg) return final_msg.take_error();
    protocol::Encoder(out).auth_sasl_final(*final_msg);
  }
  return std::nullopt;
}

/// Finds the database and pool, learns the server's parameters if this pool has none yet, and
/// completes the startup (AuthenticationOk, ParameterStatus..., BackendKeyData, ReadyForQuery).
awaitable<bool> Session::attach_pool(std::string& greeting, const Login& who) {
  std::string out = std::move(greeting);
  out.reserve(out.size() + 512);  // the parameters, key and ReadyForQuery: one allocation, not four
  protocol::Encoder enc(out);
  if (who.database == "keel") {
    if (!cfg_->is_admin(who.user)) {
      PgError e = PgError::fatal(sqlstate::invalid_authorization, "user \"" + who.user + "\" may not use the admin console");
      co_await fatal(e, out);
      co_return false;
    }
    admin_ = true;
    enc.auth_ok().parameter_status("server_version", "15.0 (keel admin)").parameter_status("client_encoding", "UTF8")
        .parameter_status("server_encoding", "UTF8").parameter_status("DateStyle", "ISO, MDY")
        .parameter_status("integer_datetimes", "on").parameter_status("standard_conforming_strings", "on");
  } else {
    db_ = cfg_->database(who.database);
    if (!db_) {
      PgError e = PgError::fatal(sqlstate::invalid_catalog_name, "database \"" + who.database + "\" does not exist");
      co_await fatal(e, out);
      co_return false;
    }
    mode_ = db_->pool.mode;
    track_statements_ = mode_ == config::PoolMode::transaction && db_->pool.max_prepared_statements > 0;
    pool_ = &ctx_.pool_for(*db_, who.user);
    pool_->stats().cl_active.add();
    counted_ = true;
    if (!pool_->server_params()) {
      auto r = co_await pool_->acquire();
      if (!r) {
        PgError e = r.take_error();
        e.severity = Severity::fatal;
        co_await fatal(e, out);
        co_return false;
      }
      pool_->release(std::move(r.value()));
    }
    enc.auth_ok();
    auto params = pool_->server_params();
    // The server's values as the pool encoded them once, except those the client set itself
    // (a few at most: application_name, say), which are encoded in their place.
    const auto& status = *pool_->server_status_messages();
    std::string_view all(status.bytes);
    size_t from = 0;
    for (size_t i = 0; i < params->size(); ++i) {
      const auto& k = (*params)[i].first;
      const std::string* mine = is_reportable(k) ? find_param(wanted_, k) : nullptr;
      if (!mine) continue;
      enc.raw(all.substr(from, status.starts[i] - from)).parameter_status(k, *mine);
      from = status.starts[i + 1];
    }
    enc.raw(all.substr(from));
    if (!find_param(*params, "application_name")) {
      if (auto* app = find_param(wanted_, "application_name")) enc.parameter_status("application_name", *app);
    }
  }
  key_secret_ = 0;
  while (key_secret_ == 0) {
    auto r = auth::random_bytes(4);
    std::memcpy(&key_secret_, r.data(), 4);
  }
  enc.backend_key_data(key_pid_, key_secret_).ready_for_query('I');
  KEEL_DEBUG(ids(), "login user={} database={}", who.user, who.database);
  co_return co_await send(out);
}

std::optional<pool::CancelTarget> Session::cancel_target(int32_t secret) const {
  if (!auth::constant_time_equal(std::string_view(reinterpret_cast<const char*>(&secret), 4),
                                 std::string_view(reinterpret_cast<const char*>(&key_secret_), 4)))
    return std::nullopt;
  if (!server_ || pending_ == 0) return std::nullopt;
  KEEL_INFO(ids(), "cancel forwarded to server pid {}", server_->pid);
  return server_->cancel_target();
}

void Session::kick(bool pump) {
  error_code ec;
  if (pump && server_ && pump_reading_) {
    kick_pump_ = true;
    server_->sock.cancel(ec);
  } else if (!pump && reading_) {
    kick_reader_ = true;
    client_.cancel(ec);
  }
}

void Session::check_idle(Clock::time_point now) {
  if (!logged_in_) {
    // Still logging in (last_activity_ is when it connected): past client_login_timeout its
    // socket closes, which ends the login wherever it waits on the client.
    if (cfg_->client_login_timeout > 0 && client_.is_open() &&
        now - last_activity_ > std::chrono::duration<double>(cfg_->client_login_timeout)) {
      KEEL_INFO(ids(), "closing: client_login_timeout ({}s) passed during login", cfg_->client_login_timeout);
      error_code ec;
      net::settle(client_);
      client_.close(ec);
    }
    return;
  }
  if (!parked_ || idle_killed_) return;
  if (buffered_wait_ && !pump_writing_ && settled() && !park_next_ && now - last_activity_ > kParkAfter) {
    // Quiet for a while: wait without a buffer (an idle client holds none).
    park_next_ = true;
    error_code ec;
    client_.cancel(ec);
    return;
  }
  if (!db_ || db_->pool.client_idle_timeout <= 0) return;
  if (!settled() || tx_status_ != 'I' || pump_writing_) return;  // waiting on the server is not idle
  if (now - last_activity_ > std::chrono::duration<double>(db_->pool.client_idle_timeout)) {
    idle_killed_ = true;
    error_code ec;
    client_.cancel(ec);
  }
}

}  // namespace keel::session
