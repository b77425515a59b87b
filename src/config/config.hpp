#pragma once
// keel's configuration: an immutable snapshot built once (from TOML or the quick-start flags)
// and shared read-only by every worker.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scram.hpp"

namespace keel::config {

enum class PoolMode { transaction, session };
enum class AuthType { scram_sha_256, trust };

std::string_view to_string(PoolMode m);

struct PoolSettings {
  PoolMode mode = PoolMode::transaction;
  int pool_size = 20;
  int min_pool_size = 0;
  double server_lifetime = 3600;        ///< seconds; 0 = unlimited
  double server_idle_timeout = 600;     ///< seconds; 0 = never
  double client_idle_timeout = 0;       ///< seconds; 0 = never
  double query_wait_timeout = 120;      ///< seconds; 0 = wait forever
  double server_connect_timeout = 5;    ///< seconds
  bool reject_session_state = false;    ///< session_state = "reject" (default "pin")
  int max_prepared_statements = 200;    ///< per server connection, transaction mode; 0 = pin instead
};

/// A server host naming a directory, as libpq reads it: the server listens on a Unix socket there.
inline bool is_socket_dir(std::string_view host) { return !host.empty() && host.front() == '/'; }
/// The socket file PostgreSQL makes in `dir` for `port` (its unix_socket_directories).
inline std::string socket_path(std::string_view dir, uint16_t port) {
  return std::string(dir) + "/.s.PGSQL." + std::to_string(port);
}
/// The longest socket path a sockaddr_un holds (sun_path, less its terminating NUL).
inline constexpr size_t kMaxSocketPath = 107;

struct DatabaseConfig {
  std::string name;    ///< what clients ask for
  std::string host = "127.0.0.1";  ///< a name, an address, or a Unix socket's directory ("/...")
  uint16_t port = 5432;
  std::string dbname;  ///< the server-side name
  PoolSettings pool;
  std::optional<std::string> server_user;      ///< log in to the server as this user instead
  std::optional<std::string> server_password;
};

struct UserConfig {
  std::string name;
  std::optional<auth::ScramVerifier> verifier;  ///< for client authentication
  std::optional<std::string> server_password;   ///< for logging in to servers
};

struct Config {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 6432;
  int workers = 0;  ///< 0 = one per core
  AuthType auth_type = AuthType::scram_sha_256;
  int max_client_conn = 10000;
  uint32_t max_message_size = 64u << 20;
  double client_login_timeout = 60;  ///< seconds to finish start-up and authentication; 0 = no limit
  int tcp_defer_accept = 1;          ///< seconds the kernel holds a new connection until its first bytes; 0 = off
  bool share_listen = false;         ///< another process may listen on the same address (SO_REUSEPORT)
  bool io_uring_sends = true;        ///< small sends of a reactor turn go out in one io_uring_enter
  bool io_uring_reads = true;        ///< the reads of a reactor run go to the kernel in one io_uring_enter
  std::string unix_socket_dir;       ///< also listen on DIR/.s.PGSQL.<listen port>; "" = no Unix socket
  unsigned unix_socket_mode = 0777;  ///< the socket file's permissions
  std::string unix_socket_group;     ///< the socket file's group; "" = keel's own
  std::vector<std::string> admin_users;
  std::string log_level = "info";
  PoolSettings pool_defaults;
  std::map<std::string, DatabaseConfig, std::less<>> databases;
  std::map<std::string, UserConfig, std::less<>> users;

  const DatabaseConfig* database(std::string_view name) const;
  const UserConfig* user(std::string_view name) const;
  bool is_admin(std::string_view user) const;
};

using ConfigPtr = std::shared_ptr<const Config>;

struct ConfigError {
  int line = 0;  ///< 1-based; 0 when not tied to a line
  std::string message;
};

struct ParseResult {
  ConfigPtr config;                 ///< set when errors is empty
  std::vector<ConfigError> errors;
};

/// Parses and validates TOML text. Every error found is reported, each with its line.
ParseResult parse_config(std::string_view toml_text, std::string_view source_name);
ParseResult load_config_file(const std::string& path);

/// The quick start: one database and one user taken from postgres://USER:PASS@HOST:PORT/DB.
struct QuickStart {
  std::string listen = "127.0.0.1:6432";
  std::string primary_url;
  std::string pool_mode = "transaction";
  int pool_size = 20;
  int workers = 0;
};
ParseResult config_from_quickstart(const QuickStart& q);

/// Documentation of every key, in order: the source of docs/configuration.md.
struct KeyDoc {
  std::string_view section, key, type, default_value, doc;
};
const std::vector<KeyDoc>& schema();
std::string reference_markdown();

}  // namespace keel::config
