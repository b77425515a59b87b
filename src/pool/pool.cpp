#include "pool/pool.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "net/deadline.hpp"
#include "net/edge_io.hpp"
#include "protocol/encoder.hpp"

namespace keel::pool {

namespace {
constexpr auto kCloseWait = std::chrono::seconds(2);  ///< for a closed server connection's EOF
}  // namespace

bool PoolShared::try_reserve() {
  int cur = open.load(std::memory_order_relaxed);
  while (cur < settings.pool_size)
    if (open.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) return true;
  return false;
}

void PoolShared::set_server_params(const ParamList& p) {
  std::lock_guard lock(params_mu_);
  if (greeting_) return;
  StatusMessages status;
  protocol::Encoder enc(status.bytes);
  for (auto& [k, v] : p) {
    status.starts.push_back(status.bytes.size());
    enc.parameter_status(k, v);
  }
  status.starts.push_back(status.bytes.size());
  greeting_ = std::make_unique<const Greeting>(Greeting{p, std::move(status)});
  greeting_now_.store(greeting_.get(), std::memory_order_release);
}

PoolShared& PoolRegistry::get(const config::DatabaseConfig& db, const std::string& user) {
  std::lock_guard lock(mu_);
  auto& p = pools_[{db.name, user}];
  if (!p) p = std::make_unique<PoolShared>(db.name, user, db, workers_);
  return *p;
}

std::vector<PoolShared*> PoolRegistry::all() const {
  std::lock_guard lock(mu_);
  std::vector<PoolShared*> out;
  for (auto& [k, p] : pools_) out.push_back(p.get());
  return out;
}

Pool::Pool(PoolShared& shared, int worker, Executor ex, ServerTarget target,
           std::vector<asio::io_context*> worker_ios)
    : shared_(shared), worker_(worker), ex_(ex), target_(std::move(target)), worker_ios_(std::move(worker_ios)),
      deadline_timer_(ex) {
  shared_.per_worker[size_t(worker_)].store(this, std::memory_order_release);
}

void Pool::update_gauges() {
  update_server_gauges();
  auto& s = stats();
  s.sv_connecting.set(connecting_);
  s.cl_waiting.set(int64_t(waiters_.size()));
  auto& waiting = shared_.waiting[size_t(worker_)].n;  // written only when it changes: others read it
  if (waiting.load(std::memory_order_relaxed) != int(waiters_.size()))
    waiting.store(int(waiters_.size()), std::memory_order_relaxed);
}

bool Pool::expired(const ServerConn& c, Clock::time_point now) const {
  auto life = shared_.settings.server_lifetime;
  return life > 0 && now - c.created > std::chrono::duration<double>(life);
}

awaitable<Result<ServerConnPtr>> Pool::open_reserved() {
  ++connecting_;
  update_gauges();
  auto r = co_await connect_server(target_);
  --connecting_;
  if (!r) {
    stats().server_connect_errors.add();
    KEEL_WARN(fmt::format("w{} pool {}/{}", worker_, shared_.database, shared_.user), "server login failed: {} ({})",
              r.error().message, r.error().sqlstate);
    give_slot_back();
    update_gauges();
    co_return r;
  }
  stats().server_connects.add();
  shared_.set_server_params((*r)->params);
  ++active_;
  update_gauges();
  co_return r;
}

awaitable<Result<ServerConnPtr>> Pool::acquire() {
  if (ServerConnPtr c = try_acquire()) co_return c;
  const auto start = Clock::now();
  const double qwt = shared_.settings.query_wait_timeout;
  const auto deadline = qwt > 0 ? start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(qwt))
                                : Clock::time_point::max();
  bool waited = false;
  for (;;) {
    if (shared_.try_reserve()) co_return co_await open_reserved();
    if (waited && Clock::now() >= deadline) break;
    Waiter w(deadline);
    waiters_.push_back(&w);
    update_gauges();
    if (waiters_.size() == 1) ask_for_donations();
    arm_deadline();
    waited = true;
    co_await w.wake.wait();  // whoever wakes it has taken it off waiters_
    update_gauges();
    if (w.conn) {
      stats().wait_count.add();
      stats().wait_us.add(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
      co_return std::move(w.conn);
    }
    if (w.slot) co_return co_await open_reserved();
    if (ServerConnPtr c = try_acquire()) co_return c;
  }
  if (waited) stats().wait_count.add();
  stats().wait_timeouts.add();
  PgError e = PgError::error(sqlstate::too_many_connections,
                             fmt::format("no server connection available for {}/{} within query_wait_timeout ({} s)",
                                         shared_.database, shared_.user, qwt));
  e.hint = "The pool is exhausted: raise pool_size, or look for long transactions.";
  co_return e;
}

ServerConnPtr Pool::try_acquire() {
  while (!idle_.empty()) {
    ServerConnPtr c = std::move(idle_.back());
    idle_.pop_back();
    if (net::says_something(c->sock)) {  // closing (terminated, server shutdown): not for lending
      closed_by_server(std::move(c));
      continue;
    }
    if (expired(*c, coarse_now())) {
      close_conn(std::move(c));
      continue;
    }
    ++active_;
    update_server_gauges();
    return c;
  }
  return nullptr;
}

namespace {
/// Moving a connection costs a new server login: a worker gives one only to a worker that has
/// none, or clearly fewer, so that steady load on all workers does not churn connections.
bool gives(int64_t giver_total, int64_t taker_total) { return taker_total == 0 || taker_total + 1 < giver_total; }
}  // namespace

void Pool::release(ServerConnPtr c) {
  --active_;
  if (!waiters_.empty()) {
    Waiter* w = waiters_.front();
    waiters_.pop_front();
    ++active_;
    w->conn = std::move(c);
    update_gauges();
    hand_over(*w);
    return;
  }
  auto now = coarse_now();
  if (expired(*c, now)) {
    close_conn(std::move(c));
    return;
  }
  // Idle, and said so before looking for waiters elsewhere: a worker whose queue forms meanwhile
  // either sees it idle here and asks (ask_for_donations), or is seen waiting now. (Each side
  // publishes, then fences, then reads the other's gauge: one of the two sees the other.)
  c->idle_since = now;
  idle_.push_back(std::move(c));
  update_server_gauges();
  if (shared_.workers == 1) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // Nobody here wants it but another worker's clients wait with fewer connections: hand over.
  for (int w = 0; w < shared_.workers; ++w) {
    if (w != worker_ && shared_.waiting[size_t(w)].n.load(std::memory_order_relaxed) > 0 &&
        gives(local_total() - 1, total_of(w))) {  // (judged without this one, as before it was idle)
      ServerConnPtr given = std::move(idle_.back());
      idle_.pop_back();
      update_server_gauges();
      close_conn(std::move(given));
      return;
    }
  }
}

void Pool::hand_over(Waiter& w) {
  if (handing_over_) return w.wake.give(true);
  handing_over_ = true;
  w.wake.give_now(true);
  handing_over_ = false;
}

void Pool::discard(ServerConnPtr c) {
  --active_;
  close_conn(std::move(c));
}

void Pool::close_conn(ServerConnPtr c) {
  // Terminate, and keep the slot until PostgreSQL has closed its side. A backend leaves
  // pg_stat_activity and max_connections before its socket closes, so the connection opened next
  // for this slot (often at once, on another worker) never makes PostgreSQL count pool_size + 1.
  // A server that does not close in time is cut off.
  static const std::string terminate = [] {
    std::string t;
    protocol::Encoder(t).terminate();
    return t;
  }();
  (void)net::write_now(c->sock, asio::buffer(terminate));
  update_gauges();
  asio::co_spawn(ex_, [this, c = std::move(c)]() mutable -> awaitable<void> {
    {
      net::DeadlineGuard cut_off(c->sock, Clock::now() + kCloseWait);
      uint8_t sink[256];
      // The first read is forced: a FIN that came with the last bytes read raised no edge.
      for (bool first = true;; first = false) {
        auto [ec, n] = co_await net::async_read_edge(c->sock, asio::buffer(sink), nothrow, first);
        if (ec) break;  // EOF: the backend is gone
      }
    }
    error_code ec;
    net::settle(c->sock);
    c->sock.close(ec);
    c.reset();
    give_slot_back();
    update_gauges();
  }, asio::detached);
}

void Pool::give_slot_back() {
  shared_.open.fetch_sub(1, std::memory_order_acq_rel);
  if (!waiters_.empty()) {
    if (shared_.try_reserve()) {
      Waiter* w = waiters_.front();
      waiters_.pop_front();
      w->slot = true;
      w->wake.give(true);
    }
    return;
  }
  for (int w = 0; w < shared_.workers; ++w) {
    if (w == worker_ || shared_.waiting[size_t(w)].n.load(std::memory_order_relaxed) == 0) continue;
    Pool* other = shared_.per_worker[size_t(w)].load(std::memory_order_acquire);
    if (other && size_t(w) < worker_ios_.size()) {
      asio::post(*worker_ios_[size_t(w)], [other] { other->on_slot_free(); });
      return;
    }
  }
}

void Pool::on_slot_free() {
  if (waiters_.empty() || !shared_.try_reserve()) return;
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  w->slot = true;
  w->wake.give(true);
  update_gauges();
}

void Pool::arm_deadline() {
  if (deadline_armed_ || waiters_.empty() || waiters_.front()->deadline == Clock::time_point::max()) return;
  deadline_armed_ = true;
  deadline_timer_.expires_at(waiters_.front()->deadline);
  deadline_timer_.async_wait([this](error_code) { on_deadline(); });
}

void Pool::on_deadline() {
  deadline_armed_ = false;
  auto now = Clock::now();
  while (!waiters_.empty() && waiters_.front()->deadline <= now) {
    Waiter* w = waiters_.front();
    waiters_.pop_front();
    w->wake.give(false);  // it finds its deadline passed and gives up
  }
  update_gauges();
  arm_deadline();
}

int64_t Pool::total_of(int w) const {
  auto& o = shared_.stats[size_t(w)];
  return o.sv_active.get() + o.sv_idle.get() + o.sv_connecting.get();
}

void Pool::ask_for_donations() {
  // Only a worker that has an idle connection and would give it is asked: a post wakes that
  // worker's thread, and under steady load (clients waiting on every worker, as when they
  // outnumber pool_size) nobody gives. One not asked now gives at its next release if it then
  // would (release() publishes, fences, then looks, as this does: see there), and the sweep
  // asks again while clients wait (maintain()).
  std::atomic_thread_fence(std::memory_order_seq_cst);  // after update_gauges() published waiting
  for (int w = 0; w < shared_.workers; ++w) {
    if (w == worker_ || size_t(w) >= worker_ios_.size()) continue;
    if (shared_.stats[size_t(w)].sv_idle.get() == 0 || !gives(total_of(w), local_total())) continue;
    if (Pool* other = shared_.per_worker[size_t(w)].load(std::memory_order_acquire))
      asio::post(*worker_ios_[size_t(w)], [other, me = worker_] { other->donate_idle(me); });
  }
}

bool Pool::should_donate_to(int w) const { return gives(local_total(), total_of(w)); }

void Pool::donate_idle(int to) {
  if (!waiters_.empty() || idle_.empty() || !should_donate_to(to)) return;
  ServerConnPtr c = std::move(idle_.front());  // the oldest
  idle_.erase(idle_.begin());
  close_conn(std::move(c));  // gives the slot to a worker with waiters
}

void Pool::closed_by_server(ServerConnPtr c) {
  KEEL_INFO(fmt::format("w{} s{}", worker_, c->id), "idle server connection closed by the server");
  close_conn(std::move(c));
}

int Pool::my_min_share() const {
  int min = shared_.settings.min_pool_size, n = shared_.workers;
  return min / n + (worker_ < min % n ? 1 : 0);
}

void Pool::maintain(Clock::time_point now) {
  const double idle_timeout = shared_.settings.server_idle_timeout;
  // Oldest idle first (front); keep at least this worker's share of min_pool_size.
  for (size_t i = 0; i < idle_.size();) {
    auto& c = *idle_[i];
    bool too_idle = idle_timeout > 0 && now - c.idle_since > std::chrono::duration<double>(idle_timeout) &&
                    local_total() > my_min_share();
    // An idle server connection should say nothing: one that did is closing (no syscall for
    // the quiet ones, see net::says_something). Found here within a sweep, or when next lent.
    // A FIN that came with the last bytes read raises no edge: the sweep also polls for it.
    bool closing = net::says_something(c.sock) || net::peer_closed(c.sock);
    if (closing || too_idle || expired(c, now)) {
      ServerConnPtr victim = std::move(idle_[i]);
      idle_.erase(idle_.begin() + long(i));
      if (closing) closed_by_server(std::move(victim));
      else close_conn(std::move(victim));
    } else {
      ++i;
    }
  }
  if (!waiters_.empty()) ask_for_donations();  // (a worker that became able to give since)
  for (int need = my_min_share() - local_total(); need > 0 && shared_.try_reserve(); --need) {
    asio::co_spawn(ex_, [this]() -> awaitable<void> {
      auto r = co_await open_reserved();
      if (r) release(std::move(r.value()));
    }, asio::detached);
  }
}

}  // namespace keel::pool
