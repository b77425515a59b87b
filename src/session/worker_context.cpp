#include "session/worker_context.hpp"

#include "core/log.hpp"
#include "net/edge_io.hpp"
#include "session/runtime.hpp"
#include "session/session.hpp"

namespace keel::session {

namespace {
constexpr auto kSweepInterval = std::chrono::milliseconds(250);
constexpr int kAcceptBatch = 32;  // connections accepted before the accept loop yields
// A keel cancel key's pid: bit 30 set, worker id in bits 22..29, a per-worker counter below.
constexpr int kWorkerShift = 22;
constexpr uint32_t kCounterMask = (1u << kWorkerShift) - 1;
}  // namespace

WorkerContext::WorkerContext(Runtime& rt, net::Worker& w) : rt_(rt), w_(w) {}
WorkerContext::~WorkerContext() = default;

int WorkerContext::id() const { return w_.id(); }

void WorkerContext::listen() {
  acceptor_ = std::make_unique<Acceptor>(net::open_listener(w_.io(), rt_.config->listen_host, rt_.config->listen_port,
                                                             rt_.config->tcp_defer_accept));
}

void WorkerContext::listen_unix(Acceptor listener) { unix_acceptor_ = std::make_unique<Acceptor>(std::move(listener)); }

void WorkerContext::start() {
  asio::co_spawn(w_.io(), accept_loop(*acceptor_), asio::detached);
  if (unix_acceptor_) asio::co_spawn(w_.io(), accept_loop(*unix_acceptor_), asio::detached);
  asio::co_spawn(w_.io(), sweep_loop(), asio::detached);
  // Warm min_pool_size for the pools of configured users.
  w_.post([this] {
    for (auto& [dbname, db] : rt_.config->databases) {
      if (db.pool.min_pool_size == 0) continue;
      for (auto& [uname, u] : rt_.config->users)
        if (u.server_password || db.server_password) pool_for(db, uname).maintain(Clock::now());
    }
  });
}

awaitable<void> WorkerContext::accept_loop(Acceptor& acceptor) {
  const Stream protocol(acceptor.local_endpoint().protocol());
  int in_a_row = 0;
  for (;;) {
    Socket sock(w_.io());
    error_code ec;
    if (net::accept_now(acceptor, protocol, sock, ec)) {
      rt_.clients.fetch_add(1, std::memory_order_relaxed);
      std::make_shared<Session>(*this, std::move(sock))->start();
      // A burst of connections: let the sessions just started run between batches.
      if (++in_a_row == kAcceptBatch) {
        in_a_row = 0;
        co_await asio::post(w_.io(), asio::use_awaitable_t<Executor>());
      }
      continue;
    }
    in_a_row = 0;
    if (ec == asio::error::would_block) {
      error_code wec = co_await net::wait_acceptable(acceptor);
      if (wec && (wec == asio::error::operation_aborted || !acceptor.is_open())) co_return;
      continue;
    }
    if (!acceptor.is_open()) co_return;
    // The client gave up while queued: nothing to do.
    if (ec == asio::error::connection_aborted || ec.value() == EPROTO) continue;
    KEEL_WARN(fmt::format("w{}", id()), "accept failed: {}", ec.message());
    Timer t(w_.io(), std::chrono::milliseconds(50));  // e.g. EMFILE: back off
    co_await t.async_wait(nothrow);
  }
}

awaitable<void> WorkerContext::sweep_loop() {
  Timer t(w_.io());
  for (;;) {
    t.expires_after(kSweepInterval);
    auto [ec] = co_await t.async_wait(nothrow);
    if (ec) co_return;
    auto now = Clock::now();
    for (auto& [k, p] : pools_) p->maintain(now);
    polls_.clear();
    for (size_t i = 0; i < sessions_.size(); ++i) {
      if (!sessions_[i]) continue;
      auto s = sessions_[i]->shared_from_this();
      s->check_idle(now);
      s->edge_checks([&](int fd, bool pump) {
        polls_.push_back({fd, POLLRDHUP, 0});
        polled_.push_back({s, pump});
      });
    }
    // One poll() for all of them (see net/edge_io.hpp): a FIN or a reset that came with the
    // last bytes read raises no epoll edge; kick the wait on it so it reads and sees the end.
    if (!polls_.empty() && ::poll(polls_.data(), polls_.size(), 0) > 0) {
      for (size_t i = 0; i < polls_.size(); ++i)
        if (net::shows_end(polls_[i].revents)) polled_[i].first->kick(polled_[i].second);
    }
    polled_.clear();
  }
}

pool::Pool& WorkerContext::pool_for(const config::DatabaseConfig& db, const std::string& user) {
  auto& shared = rt_.registry.get(db, user);
  auto& p = pools_[&shared];
  if (!p) {
    pool::ServerTarget t;
    t.host = db.host;
    t.port = db.port;
    t.dbname = db.dbname;
    t.user = db.server_user.value_or(user);
    t.connect_timeout = db.pool.server_connect_timeout;
    if (db.server_password) t.password = db.server_password;
    else if (auto* u = rt_.config->user(t.user); u && u->server_password) t.password = u->server_password;
    p = std::make_unique<pool::Pool>(shared, id(), w_.io().get_executor(), std::move(t), rt_.ios());
  }
  return *p;
}

int32_t WorkerContext::register_session(const std::shared_ptr<Session>& s) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else if (sessions_.size() < kCounterMask) {
    slot = uint32_t(sessions_.size());
    sessions_.push_back(nullptr);
  } else {
    return 0;  // four million sessions on one worker: this one gets no cancel key
  }
  sessions_[slot] = s.get();
  return int32_t((1u << 30) | (uint32_t(id()) << kWorkerShift) | (slot + 1));
}

size_t WorkerContext::slot_of(int32_t pid) const {
  uint32_t n = uint32_t(pid) & kCounterMask;  // register_session's slot + 1
  return n != 0 && n <= sessions_.size() ? n - 1 : sessions_.size();
}

Session* WorkerContext::registered(int32_t pid) const {
  size_t slot = slot_of(pid);
  return slot < sessions_.size() ? sessions_[slot] : nullptr;
}

void WorkerContext::unregister_session(int32_t pid) {
  size_t slot = slot_of(pid);
  if (slot == sessions_.size() || !sessions_[slot]) return;
  sessions_[slot] = nullptr;
  free_slots_.push_back(uint32_t(slot));
}

awaitable<void> WorkerContext::route_cancel(int32_t pid, int32_t secret) {
  uint32_t u = uint32_t(pid);
  if (!(u & (1u << 30))) co_return;
  size_t w = (u >> kWorkerShift) & 0xff;
  if (w >= rt_.contexts.size()) co_return;
  WorkerContext* target = rt_.contexts[w].get();
  if (target == this) {
    co_await cancel_local(pid, secret);
  } else {
    // Runs on the owner's thread; this coroutine resumes on its own once that is done.
    co_await asio::co_spawn(target->w_.io(), target->cancel_local(pid, secret), asio::use_awaitable_t<Executor>());
  }
}

awaitable<void> WorkerContext::cancel_local(int32_t pid, int32_t secret) {
  Session* found = registered(pid);
  if (!found) co_return;
  auto s = found->shared_from_this();
  auto to = s->cancel_target(secret);
  s.reset();  // the session may end meanwhile: what the cancel needs is copied
  if (to) co_await pool::cancel_request(*to);
}

}  // namespace keel::session
