#include <fmt/format.h>

#include "config/config.hpp"

namespace keel::config {

const std::vector<KeyDoc>& schema() {
  static const std::vector<KeyDoc> keys = {
      {"keel", "listen", "string", "\"127.0.0.1:6432\"", "Address clients connect to, as host:port."},
      {"keel", "workers", "integer", "0", "Worker threads, each with its own listening socket (SO_REUSEPORT) and its share of the pools. 0 = one per core. On a machine shared with the database and the application, fewer spend less CPU per transaction (bench/README)."},
      {"keel", "auth_type", "string", "\"scram-sha-256\"", "How clients authenticate: `scram-sha-256` against `[users]`, or `trust` (no password; local development only)."},
      {"keel", "max_client_conn", "integer", "10000", "Most client connections at once, over all workers. One more gets FATAL 53300."},
      {"keel", "client_login_timeout", "seconds", "60", "A client that has not finished start-up and authentication this long after connecting is disconnected. 0 = no limit."},
      {"keel", "tcp_defer_accept", "integer", "1", "Seconds (Linux TCP_DEFER_ACCEPT) the kernel keeps a new client connection to itself until the client's first bytes arrive, so keel takes the connection and its first message in one wake-up. A client that stays silent is handed over when the time is up, and client_login_timeout applies from then. 0 = off."},
      {"keel", "unix_socket_dir", "string", "\"\"", "Also listen on a Unix socket in this directory, named as PostgreSQL names its own: DIR/.s.PGSQL.PORT with the port of `listen` (clients reach it as libpq does with host=DIR). Who may connect: unix_socket_mode and unix_socket_group (clients still authenticate). A socket file left by a process that is gone is replaced; one a live process listens on stops keel (with share_listen = true keel takes the name over in one rename, so a client connecting meanwhile reaches one or the other, and the old process keeps its connections). keel removes the file when it stops. \"\": no Unix socket."},
      {"keel", "unix_socket_mode", "string", "\"0777\"", "Permissions of the Unix socket file (unix_socket_dir), in octal, as PostgreSQL's unix_socket_permissions: \"0770\" lets only its owner and group connect."},
      {"keel", "unix_socket_group", "string", "\"\"", "Group of the Unix socket file (unix_socket_dir), by name; keel must be a member of it (or root). \"\": keel's own group. An unknown group stops keel at start-up."},
      {"keel", "share_listen", "boolean", "false", "Let another process listen on the same address (its sockets must set SO_REUSEPORT too): the kernel then spreads new connections over both, as a second keel started beside the first for a restart without refused connections needs. false: keel refuses to start while another process listens there, so a second keel started by mistake, perhaps with another configuration, cannot take half of the connections unnoticed."},
      {"keel", "io_uring_sends", "boolean", "true", "Send through io_uring: each worker copies the small writes (up to 8 KiB) of one turn of its event loop and hands them to the kernel in one io_uring_enter just before it waits for events, instead of one send() system call each. It saves about one system call per forwarded message under load, which is most of a gateway's CPU where system calls are dear (virtual machines). A send to a socket whose buffer is full waits in the kernel, and later writes to that socket wait behind it. Where io_uring cannot be set up (a kernel without it, or a seccomp policy that forbids it), keel logs why and sends as with false. false: one send() system call per write. Read at start-up."},
      {"keel", "io_uring_reads", "boolean", "true", "Read through io_uring: after each wait for events, a worker does the reads of every socket that became readable and has a read waiting, in one io_uring_enter (each read non-blocking, so all complete within it), instead of one recv() system call each as its handlers run. A lone read is left to its recv(): one system call either way, and less work. With io_uring_sends it leaves under one system call per transaction under load (select-only through a pool: about 0.5 against 2.4 with sends alone). A socket waited on without a buffer (an idle client, parked) is still read with recv() when it wakes. Where io_uring cannot be set up, keel logs why and reads as with false. false: one recv() system call per read. Read at start-up."},
      {"keel", "max_message_size", "integer", "67108864", "Largest client message in bytes. A larger one gets FATAL 08P01 and the connection closes."},
      {"keel", "admin_users", "array of strings", "[]", "Users allowed on the admin console (database `keel`)."},
      {"keel", "log_level", "string", "\"info\"", "trace, debug, info, warn, error or off. Query text and parameters are logged only at debug."},
      {"pool", "pool_mode", "string", "\"transaction\"", "`transaction`: a server connection is lent for one transaction and returns to the pool when the server reports idle. `session`: the client keeps it until it leaves; it is reset with DISCARD ALL before reuse."},
      {"pool", "pool_size", "integer", "20", "Most server connections per (database, user) pool, over all workers."},
      {"pool", "min_pool_size", "integer", "0", "Server connections kept open per pool even when idle (for pools of configured users)."},
      {"pool", "server_lifetime", "seconds", "3600", "A server connection older than this is closed when it is next idle. 0 = no limit."},
      {"pool", "server_idle_timeout", "seconds", "600", "A server connection idle longer than this is closed (down to min_pool_size). 0 = never."},
      {"pool", "client_idle_timeout", "seconds", "0", "A client idle (not in a transaction) longer than this is disconnected with FATAL 57P05. 0 = never."},
      {"pool", "query_wait_timeout", "seconds", "120", "A client that waits longer than this for a server connection gets ERROR 53300; its connection stays usable. 0 = wait forever."},
      {"pool", "server_connect_timeout", "seconds", "5", "Time allowed to connect and log in to a server."},
      {"pool", "session_state", "string", "\"pin\"", "Transaction mode, for statements that leave state on the server connection (LISTEN, session advisory locks, temporary tables, WITH HOLD cursors, SQL PREPARE, SET of a parameter keel does not carry): `pin` keeps the client on its server connection until that state is gone (counted in SHOW POOLS cl_pinned); `reject` refuses such statements with ERROR 0A000."},
      {"pool", "max_prepared_statements", "integer", "200", "Transaction mode: named prepared statements (protocol Parse with a name) follow their client to any server connection. keel prepares each one lazily on the connection the client holds, under its own name, re-using one already prepared there with the same text and parameter types; each server connection keeps at most this many, closing the least recently used. 0 = do not track them: a client with a named statement is pinned to its server connection until it closes it."},
      {"databases.NAME", "host", "string", "\"127.0.0.1\"", "The server's host name or address, or the directory of its Unix socket (a path starting with /, as libpq reads it: keel connects to DIR/.s.PGSQL.PORT, which skips the TCP stack on both ends when the server runs on the same machine)."},
      {"databases.NAME", "port", "integer", "5432", "The server's port."},
      {"databases.NAME", "dbname", "string", "NAME", "The database name on the server."},
      {"databases.NAME", "server_user", "string", "(the client's user)", "Log in to the server as this user instead of the client's."},
      {"databases.NAME", "server_password", "string", "(the user's)", "Password for `server_user`."},
      {"databases.NAME", "pool_mode, pool_size, min_pool_size, session_state, max_prepared_statements", "", "from [pool]", "Per-database overrides of the [pool] keys of the same name."},
      {"users.NAME", "password", "string", "", "The user's password: clients authenticate with SCRAM-SHA-256 against it (the SCRAM keys are derived once, at load), and keel logs in to servers with it (SCRAM-SHA-256, md5 or password, as the server asks)."},
      {"users.NAME", "scram_verifier", "string", "", "Instead of `password`: a verifier as stored in pg_authid.rolpassword (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`), for client authentication only."},
      {"users.NAME", "server_password", "string", "(password)", "Password keel uses to log in to servers as this user, when it differs from `password` or only `scram_verifier` is given."},
  };
  return keys;
}

std::string reference_markdown() {
  std::string out =
      "# Configuration reference\n\n"
      "keel reads one TOML file (`keel --config keel.toml`; `keel check keel.toml` validates it and names\n"
      "each error with its line). This page is generated from the schema in `src/config/schema.cpp`\n"
      "(`keel config-reference`); a test keeps them equal.\n\n"
      "Durations are in seconds and may be fractional.\n";
  std::string_view section;
  for (auto& k : schema()) {
    if (k.section != section) {
      section = k.section;
      out += fmt::format("\n## [{}]\n\n| key | type | default | meaning |\n|---|---|---|---|\n", section);
    }
    out += fmt::format("| `{}` | {} | {} | {} |\n", k.key, k.type, k.default_value, k.doc);
  }
  return out;
}

}  // namespace keel::config
