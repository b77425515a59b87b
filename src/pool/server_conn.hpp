#pragma once
// One logged-in connection to a PostgreSQL server. Owned by exactly one of: its pool's idle
// list, a session that holds it, or a coroutine resetting it. Lives on one worker.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "core/result.hpp"
#include "net/asio.hpp"
#include "net/send_batch.hpp"
#include "prepared/statements.hpp"

namespace keel::pool {

using ParamList = std::vector<std::pair<std::string, std::string>>;

/// Where and as whom to log in.
struct ServerTarget {
  std::string host;  ///< a name or address, or the directory of a Unix socket (config::is_socket_dir)
  uint16_t port = 5432;
  std::string dbname;
  std::string user;
  std::optional<std::string> password;
  double connect_timeout = 5;
};

/// Where a CancelRequest for a server connection goes: its address and its backend key.
struct CancelTarget {
  Stream::endpoint endpoint;
  int32_t pid = 0;
  int32_t secret = 0;
};

class ServerConn {
 public:
  explicit ServerConn(Executor ex) : sock(ex) {}
  ~ServerConn() { net::settle(sock); }

  Socket sock;
  Stream::endpoint endpoint;
  uint64_t id = 0;
  int32_t pid = 0, secret = 0;  ///< the server's BackendKeyData, for cancel
  Clock::time_point created{}, idle_since{};
  ParamList params;             ///< ParameterStatus values reported at login
  ParamList settings;           ///< session parameters set on it since (by keel or a client)
  prepared::ServerStatements statements;  ///< named statements keel prepared on it (transaction mode)

  CancelTarget cancel_target() const { return {endpoint, pid, secret}; }
};
using ServerConnPtr = std::unique_ptr<ServerConn>;

/// Connects and logs in (SCRAM-SHA-256, md5, password or trust), within target.connect_timeout.
/// A server-sent error is returned as it came (its SQLSTATE), as severity ERROR.
awaitable<Result<ServerConnPtr>> connect_server(const ServerTarget& target);

/// Runs one simple query to completion (used for resets: ROLLBACK, DISCARD ALL), discarding
/// results; fails on a server error, EOF or deadline.
awaitable<Status> run_simple(ServerConn& c, std::string sql, Clock::time_point deadline);

/// Sends a CancelRequest for t's key on a fresh connection to its server; returns once the server
/// has closed that connection (the backend has been signalled), or after 5 s.
awaitable<void> cancel_request(CancelTarget t);

}  // namespace keel::pool
