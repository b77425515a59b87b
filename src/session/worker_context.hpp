#pragma once
// The session layer's per-worker state: its listener, its pools, its live sessions (by the cancel
// key keel handed out), and a periodic sweep. Touched only on the worker's own thread.
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include <poll.h>

#include "net/asio.hpp"
#include "net/worker.hpp"
#include "pool/pool.hpp"
#include "sql/session_state.hpp"

namespace keel::session {

struct Runtime;
class Session;

class WorkerContext {
 public:
  WorkerContext(Runtime& rt, net::Worker& w);
  ~WorkerContext();

  Runtime& runtime() { return rt_; }
  net::Worker& worker() { return w_; }
  int id() const;

  /// Opens the listening socket (on the calling thread, before the worker runs).
  void listen();
  /// Also accepts on `listener` (a Unix socket; runs from start()).
  void listen_unix(Acceptor listener);
  /// Starts the accept loop and the sweep (posts to the worker).
  void start();

  /// The pool for (database, user) on this worker, created on first use.
  pool::Pool& pool_for(const config::DatabaseConfig& db, const std::string& user);

  /// Hands out a cancel key whose pid names this worker; registers the session under it.
  int32_t register_session(const std::shared_ptr<Session>& s);
  void unregister_session(int32_t pid);

  /// A CancelRequest arrived (on any worker): routes it to the worker that owns pid, which sends
  /// it on to the server connection that client holds. Completes, on the caller's worker, once
  /// that server has closed the cancel connection, that is, has signalled its backend (or after
  /// 5 s). PostgreSQL closes a client's cancel connection only then, and clients rely on it:
  /// libpq's PQcancel waits for the close, so the cancel cannot land on the next statement.
  awaitable<void> route_cancel(int32_t pid, int32_t secret);

  /// The worker's memory of statement texts that leave no session state.
  sql::StatementFilter& statement_filter() { return filter_; }

 private:
  awaitable<void> accept_loop(Acceptor& acceptor);
  awaitable<void> sweep_loop();
  awaitable<void> cancel_local(int32_t pid, int32_t secret);
  /// The slot pid names in sessions_, or sessions_.size() when it names none.
  size_t slot_of(int32_t pid) const;
  /// The session registered under pid on this worker, or null.
  Session* registered(int32_t pid) const;

  Runtime& rt_;
  net::Worker& w_;
  std::unique_ptr<Acceptor> acceptor_, unix_acceptor_;
  std::unordered_map<const pool::PoolShared*, std::unique_ptr<pool::Pool>> pools_;
  /// Registered sessions by slot: a cancel key's pid names its worker and its slot + 1 (a
  /// session unregisters itself when it ends). Free slots are reused, so an idle client costs a
  /// pointer here; a reused pid still needs its own session's secret to cancel anything.
  std::vector<Session*> sessions_;
  std::vector<uint32_t> free_slots_;
  std::vector<struct pollfd> polls_;                       ///< the sweep's edge checks (reused)
  std::vector<std::pair<std::shared_ptr<Session>, bool>> polled_;
  sql::StatementFilter filter_;
};

}  // namespace keel::session
