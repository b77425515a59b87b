#include "pool/server_conn.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <atomic>
#include <optional>

#include "auth/md5.hpp"
#include "auth/scram.hpp"
#include "core/bytes.hpp"
#include "core/log.hpp"
#include "net/deadline.hpp"
#include "net/edge_io.hpp"
#include "protocol/encoder.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

namespace keel::pool {

namespace {

std::atomic<uint64_t> next_conn_id{1};

PgError conn_error(std::string msg) { return PgError::error(sqlstate::connection_failure, std::move(msg)); }

/// Reads one whole server message into (type, body). Messages over 1 MiB during login are refused.
struct MessageIn {
  char type;
  std::string body;
};
awaitable<Result<MessageIn>> read_message(Socket& s, std::string& buf) {
  for (;;) {
    uint32_t cont = 0;
    auto f = protocol::next_frame(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), cont, 1 << 20, 1 << 20);
    if (f.kind == protocol::Frame::Kind::whole) {
      MessageIn m{f.type, buf.substr(5, f.size - 5)};
      buf.erase(0, f.size);
      co_return m;
    }
    if (f.kind != protocol::Frame::Kind::need_more) co_return conn_error("invalid message from server");
    // Read into buf's tail: an 8-KiB array here would sit in this coroutine's frame, malloc'ed
    // for every message (too big for Asio's frame recycling).
    const size_t had = buf.size();
    buf.resize(had + 8192);
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf.data() + had, 8192), nothrow);
    buf.resize(had + (ec ? 0 : n));
    if (ec) co_return conn_error("server closed the connection: " + ec.message());
  }
}

awaitable<Status> write_all(Socket& s, const std::string& out) {
  error_code ec = co_await net::write_all(s, asio::buffer(out));
  if (ec) co_return conn_error("write to server failed: " + ec.message());
  co_return Ok{};
}

PgError server_error(const MessageIn& m) {
  auto e = protocol::parse_error(m.body);
  if (!e) return conn_error("malformed error from server");
  e->severity = Severity::error;
  return *e;
}

/// Answers the server's authentication requests until AuthenticationOk.
awaitable<Status> authenticate(Socket& s, std::string& buf, const ServerTarget& t) {
  std::optional<auth::ScramClient> scram;
  for (;;) {
    auto m = co_await read_message(s, buf);
    if (!m) co_return m.take_error();
    if (m->type == 'E') co_return server_error(*m);
    if (m->type != 'R') co_return conn_error("unexpected message during server login");
    auto a = protocol::parse_auth(m->body);
    if (!a) co_return conn_error("malformed authentication request");
    std::string out;
    protocol::Encoder enc(out);
    auto need_password = [&]() -> bool { return t.password.has_value(); };
    switch (a->code) {
      case 0:
        co_return Ok{};
      case 3:  // cleartext
        if (!need_password()) co_return PgError::error(sqlstate::invalid_password, "server asks for a password and none is configured");
        enc.password(*t.password);
        break;
      case 5:  // md5
        if (!need_password() || a->data.size() != 4)
          co_return PgError::error(sqlstate::invalid_password, "server asks for an md5 password and none is configured");
        enc.password(auth::md5_password_response(t.user, *t.password, a->data));
        break;
      case 10:  // SASL
        if (!need_password()) co_return PgError::error(sqlstate::invalid_password, "server asks for SCRAM and no password is configured");
        if (a->data.find("SCRAM-SHA-256") == std::string_view::npos)
          co_return conn_error("server offers no supported SASL mechanism");
        scram.emplace(*t.password);
        enc.sasl_initial("SCRAM-SHA-256", scram->client_first());
        break;
      case 11: {  // SASL continue
        if (!scram) co_return conn_error("unexpected SASL continue");
        auto r = scram->handle_server_first(a->data);
        if (!r) co_return r.take_error();
        enc.sasl_response(*r);
        break;
      }
      case 12: {  // SASL final
        if (!scram) co_return conn_error("unexpected SASL final");
        if (auto st = scram->handle_server_final(a->data); !st) co_return st.take_error();
        continue;
      }
      default:
        co_return conn_error("unsupported server authentication method " + std::to_string(a->code));
    }
    if (auto st = co_await write_all(s, out); !st) co_return st;
  }
}

}  // namespace

awaitable<Result<ServerConnPtr>> connect_server(const ServerTarget& t) {
  auto ex = co_await asio::this_coro::executor;
  auto c = std::make_unique<ServerConn>(ex);
  c->id = next_conn_id.fetch_add(1, std::memory_order_relaxed);
  auto deadline = Clock::now() + std::chrono::milliseconds(int64_t(t.connect_timeout * 1000));
  error_code ec;
  // The deadline covers connecting and logging in (server_connect_timeout), not the name lookup.
  std::optional<net::DeadlineGuard> guard;
  if (config::is_socket_dir(t.host)) {
    // A server on this machine: its Unix socket skips the TCP stack on both ends.
    const std::string path = config::socket_path(t.host, t.port);
    c->endpoint = asio::local::stream_protocol::endpoint(path);
    guard.emplace(c->sock, deadline);
    auto [cec] = co_await c->sock.async_connect(c->endpoint, nothrow);
    if (cec) co_return conn_error("could not connect to server on socket \"" + path + "\": " + cec.message());
  } else {
    Resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(t.host, std::to_string(t.port), nothrow);
    if (rec || results.empty()) co_return conn_error("could not resolve server host \"" + t.host + "\"");
    guard.emplace(c->sock, deadline);
    error_code cec;
    // Each address in turn, by hand: asio::async_connect takes no resolver results for a generic
    // socket, and would go on to the next address after the deadline closed this one.
    for (const auto& entry : results) {
      c->endpoint = entry.endpoint();
      c->sock.close(ec);
      std::tie(cec) = co_await c->sock.async_connect(c->endpoint, nothrow);
      if (!cec || cec == asio::error::operation_aborted) break;  // connected, or the deadline passed
    }
    if (cec) co_return conn_error("could not connect to server " + t.host + ":" + std::to_string(t.port) + ": " + cec.message());
    c->sock.set_option(tcp::no_delay(true), ec);
  }
  std::string out;
  protocol::Encoder(out).startup({{"user", t.user}, {"database", t.dbname}});
  if (auto st = co_await write_all(c->sock, out); !st) co_return st.take_error();
  std::string buf;
  if (auto st = co_await authenticate(c->sock, buf, t); !st) co_return st.take_error();
  for (;;) {
    auto m = co_await read_message(c->sock, buf);
    if (!m) co_return m.take_error();
    switch (m->type) {
      case 'S':
        if (auto ps = protocol::parse_parameter_status(m->body)) c->params.emplace_back(ps->first, ps->second);
        break;
      case 'K':
        if (auto k = protocol::parse_backend_key(m->body)) std::tie(c->pid, c->secret) = *k;
        break;
      case 'E':
        co_return server_error(*m);
      case 'Z':
        if (!buf.empty()) co_return conn_error("unexpected data after server login");
        c->created = c->idle_since = Clock::now();
        co_return std::move(c);
      default:  // NoticeResponse, NegotiateProtocolVersion: nothing to do
        break;
    }
  }
}

awaitable<Status> run_simple(ServerConn& c, std::string sql, Clock::time_point deadline) {
  net::DeadlineGuard guard(c.sock, deadline);
  std::string out;
  protocol::Encoder(out).query(sql);
  if (auto st = co_await write_all(c.sock, out); !st) co_return st;
  std::string buf;
  std::optional<PgError> err;
  for (;;) {
    auto m = co_await read_message(c.sock, buf);
    if (!m) co_return m.take_error();
    if (m->type == 'E') err = server_error(*m);
    if (m->type == 'Z') {
      if (!buf.empty()) co_return conn_error("unexpected data after reset");
      if (err) co_return *err;
      if (m->body != "I") co_return conn_error("server not idle after reset");
      co_return Ok{};
    }
  }
}

awaitable<void> cancel_request(CancelTarget t) {
  auto ex = co_await asio::this_coro::executor;
  Socket s(ex);
  net::DeadlineGuard guard(s, Clock::now() + std::chrono::seconds(5));
  auto [ec] = co_await s.async_connect(t.endpoint, nothrow);
  if (ec) co_return;
  std::string out;
  protocol::Encoder(out).cancel_request(t.pid, t.secret);
  co_await asio::async_write(s, asio::buffer(out), nothrow);
  // The server closes the connection once it has signalled the backend.
  char b[16];
  co_await s.async_read_some(asio::buffer(b), nothrow);
}

}  // namespace keel::pool
