#pragma once
// Server connection pools. One PoolShared per (database, user) for the whole process (limits and
// stats, atomics only); one Pool per worker per key, touched only on its worker's thread.
//
// A worker's Pool lends its idle connections LIFO, opens new ones while the process-wide count is
// under pool_size, and queues clients FIFO otherwise. When a worker has clients waiting and none
// or clearly fewer connections than another, a connection of the other worker that nobody there
// wants is closed so the waiting worker can open one: no worker starves while another holds idle
// connections, and balanced load does not churn connections.
#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/counter.hpp"
#include "net/signal.hpp"
#include "pool/server_conn.hpp"

namespace keel::pool {

inline constexpr int kMaxWorkers = 256;

/// What one worker reports for one pool. Written by that worker only, on a cache line of its own
/// so that two workers counting transactions do not take the line from each other.
struct alignas(64) PoolStats {
  Counter cl_active, cl_waiting, sv_active, sv_idle, sv_connecting;
  Counter xact_count, query_count, wait_count, wait_us;
  Counter server_connects, server_connect_errors, wait_timeouts;
  Counter cl_pinned, pins;  ///< clients pinned now; times a client became pinned
  Counter prepares, prepare_reuses, prepare_evictions;  ///< named statements: sent, answered from cache, closed
};

class Pool;

/// Process-wide part of a pool.
struct PoolShared {
  PoolShared(std::string db, std::string user, const config::DatabaseConfig& dbc, int workers)
      : database(std::move(db)), user(std::move(user)), settings(dbc.pool), stats(size_t(workers)),
        waiting(size_t(workers)), workers(workers) {}
  const std::string database, user;
  const config::PoolSettings settings;
  std::atomic<int> open{0};  ///< connected + connecting, over all workers
  std::vector<PoolStats> stats;
  std::array<std::atomic<Pool*>, kMaxWorkers> per_worker{};
  /// Clients waiting on each worker, one cache line each: a worker writes its own when its queue
  /// changes and reads the others' whenever it releases a connection nobody there wants.
  struct alignas(64) Waiting {
    std::atomic<int> n{0};
  };
  std::vector<Waiting> waiting;
  const int workers;

  /// Reserves a slot for one more server connection; false when pool_size is reached.
  bool try_reserve();

  /// ParameterStatus values of the first server login (any worker), or null before any. Set
  /// once and kept as long as the pool, so read without a lock (every attach reads it).
  const ParamList* server_params() const {
    auto* g = greeting_now_.load(std::memory_order_acquire);
    return g ? &g->params : nullptr;
  }
  /// The same parameters as ParameterStatus messages, encoded once for every login: the
  /// messages in a row, and where each one starts (one offset per parameter, then the end).
  struct StatusMessages {
    std::string bytes;
    std::vector<size_t> starts;
  };
  /// Null before any server login.
  const StatusMessages* server_status_messages() const {
    auto* g = greeting_now_.load(std::memory_order_acquire);
    return g ? &g->status : nullptr;
  }
  void set_server_params(const ParamList& p);

 private:
  struct Greeting {
    ParamList params;
    StatusMessages status;
  };
  mutable std::mutex params_mu_;  ///< serialises set_server_params
  std::unique_ptr<const Greeting> greeting_;
  std::atomic<const Greeting*> greeting_now_{nullptr};
};

/// Shares PoolShared objects by key across workers. Thread-safe.
class PoolRegistry {
 public:
  explicit PoolRegistry(int workers) : workers_(workers) {}
  PoolShared& get(const config::DatabaseConfig& db, const std::string& user);
  /// Snapshot of all pools for the admin console.
  std::vector<PoolShared*> all() const;

 private:
  mutable std::mutex mu_;
  int workers_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<PoolShared>> pools_;
};

/// Per-worker pool. All methods run on the owning worker's thread.
class Pool {
 public:
  Pool(PoolShared& shared, int worker, Executor ex, ServerTarget target,
       std::vector<asio::io_context*> worker_ios);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// Lends a logged-in server connection, waiting up to query_wait_timeout (ERROR 53300 after).
  awaitable<Result<ServerConnPtr>> acquire();
  /// An idle connection of this worker at once (no suspension), or null. Fair: release() hands
  /// connections to waiters first, so idle ones exist only while nobody here waits.
  ServerConnPtr try_acquire();
  /// Takes back a connection that is idle on the server (ReadyForQuery 'I', nothing pending).
  void release(ServerConnPtr c);
  /// Closes a connection that must not be reused.
  void discard(ServerConnPtr c);
  /// Periodic upkeep: idle timeout, lifetime, min_pool_size.
  void maintain(Clock::time_point now);
  /// Another worker freed a slot while clients here wait.
  void on_slot_free();
  /// Another worker's clients wait while pool_size is reached: close an idle connection here,
  /// if there is one nobody here wants, so that worker can open its own.
  void donate_idle(int to);

  PoolShared& shared() { return shared_; }
  PoolStats& stats() { return shared_.stats[size_t(worker_)]; }
  const ServerTarget& target() const { return target_; }
  /// ParameterStatus values of the first server login of this pool (any worker), or null.
  const ParamList* server_params() const { return shared_.server_params(); }
  const PoolShared::StatusMessages* server_status_messages() const { return shared_.server_status_messages(); }

 private:
  /// A client waiting for a connection. Woken (net::Handoff: no timer per waiter) with a
  /// connection, a slot to open one, or at its deadline by the pool's one deadline timer.
  struct Waiter {
    explicit Waiter(Clock::time_point d) : deadline(d) {}
    Clock::time_point deadline;
    net::Handoff wake;
    ServerConnPtr conn;
    bool slot = false;  ///< a connection slot was reserved for this waiter
  };
  /// Waiters join at the back with the same timeout, so the front's deadline comes first: the
  /// timer is set for it, and when it fires it ends the waiters whose deadline has passed.
  void arm_deadline();
  void on_deadline();
  /// Gives `w` the connection put in it (release()): the waiting client resumes inside this call,
  /// up to its next wait (no posted completion, no extra epoll_wait), unless a hand-over is
  /// already running on this stack (a login that returns the connection it took to learn the
  /// server's parameters): then through the executor, so nesting stays one level deep.
  void hand_over(Waiter& w);

  awaitable<Result<ServerConnPtr>> open_reserved();
  void give_slot_back();
  /// Asks the workers that would give this one an idle connection (should_donate_to, judged
  /// from their published gauges) to do so.
  void ask_for_donations();
  bool should_donate_to(int worker) const;
  /// Server connections worker w's pool holds (active, idle, connecting), as it last published them.
  int64_t total_of(int w) const;
  void closed_by_server(ServerConnPtr c);
  void close_conn(ServerConnPtr c);
  void update_gauges();
  /// The two gauges a checkout or a return moves (the per-transaction path); update_gauges() for the rest.
  void update_server_gauges() {
    auto& s = stats();
    s.sv_idle.set(int64_t(idle_.size()));
    s.sv_active.set(active_);
  }
  bool expired(const ServerConn& c, Clock::time_point now) const;
  int my_min_share() const;
  int local_total() const { return int(idle_.size()) + active_ + connecting_; }

  PoolShared& shared_;
  int worker_;
  Executor ex_;
  ServerTarget target_;
  std::vector<asio::io_context*> worker_ios_;
  std::vector<ServerConnPtr> idle_;  ///< newest at the back
  std::deque<Waiter*> waiters_;
  Timer deadline_timer_;
  bool deadline_armed_ = false;
  bool handing_over_ = false;
  int active_ = 0, connecting_ = 0;
};

}  // namespace keel::pool
