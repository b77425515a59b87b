#include "config/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <thread>
#include <toml++/toml.h>

#include "auth/crypto.hpp"

namespace keel::config {

std::string_view to_string(PoolMode m) { return m == PoolMode::session ? "session" : "transaction"; }

const DatabaseConfig* Config::database(std::string_view name) const {
  auto it = databases.find(name);
  return it == databases.end() ? nullptr : &it->second;
}
const UserConfig* Config::user(std::string_view name) const {
  auto it = users.find(name);
  return it == users.end() ? nullptr : &it->second;
}
bool Config::is_admin(std::string_view u) const {
  return std::find(admin_users.begin(), admin_users.end(), u) != admin_users.end();
}

namespace {

int line_of(const toml::node& n) { return int(n.source().begin.line); }

class Parser {
 public:
  std::vector<ConfigError> errors;

  void error(const toml::node& n, std::string msg) { errors.push_back({line_of(n), std::move(msg)}); }

  template <class Fn>
  void each(const toml::table& t, std::string_view section, std::initializer_list<std::string_view> known, Fn&& fn) {
    for (auto&& [k, v] : t) {
      std::string_view key = k.str();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        errors.push_back({int(k.source().begin.line ? k.source().begin.line : line_of(v)),
                          fmt::format("unknown key '{}' in [{}]", key, section)});
        continue;
      }
      fn(key, v);
    }
  }

  std::optional<std::string> str(const toml::node& n, std::string_view key) {
    if (auto s = n.value<std::string>(); s && n.is_string()) return s;
    error(n, fmt::format("'{}' must be a string", key));
    return std::nullopt;
  }
  std::optional<int64_t> integer(const toml::node& n, std::string_view key, int64_t lo, int64_t hi) {
    if (!n.is_integer()) {
      error(n, fmt::format("'{}' must be an integer", key));
      return std::nullopt;
    }
    int64_t v = *n.value<int64_t>();
    if (v < lo || v > hi) {
      error(n, fmt::format("'{}' must be between {} and {}", key, lo, hi));
      return std::nullopt;
    }
    return v;
  }
  /// A Unix socket's path made of `dir` and `port` must fit a sockaddr_un; `n` names the line.
  void socket_path_fits(const toml::node& n, std::string_view what, std::string_view dir, uint16_t port) {
    if (auto path = socket_path(dir, port); path.size() > kMaxSocketPath)
      error(n, fmt::format("{}: the socket path \"{}\" is longer than {} bytes", what, path, kMaxSocketPath));
  }
  std::optional<bool> boolean(const toml::node& n, std::string_view key) {
    if (auto b = n.value<bool>(); b && n.is_boolean()) return b;
    error(n, fmt::format("'{}' must be true or false", key));
    return std::nullopt;
  }
  std::optional<double> seconds(const toml::node& n, std::string_view key) {
    if (!n.is_integer() && !n.is_floating_point()) {
      error(n, fmt::format("'{}' must be a number of seconds", key));
      return std::nullopt;
    }
    double v = *n.value<double>();
    if (v < 0 || v > 1e9) {
      error(n, fmt::format("'{}' must be between 0 and 1e9 seconds", key));
      return std::nullopt;
    }
    return v;
  }

  void pool_key(PoolSettings& p, std::string_view key, const toml::node& v) {
    if (key == "pool_mode") {
      if (auto s = str(v, key)) {
        if (*s == "transaction") p.mode = PoolMode::transaction;
        else if (*s == "session") p.mode = PoolMode::session;
        else error(v, fmt::format("'pool_mode' must be \"transaction\" or \"session\", not \"{}\"", *s));
      }
    } else if (key == "pool_size") {
      if (auto i = integer(v, key, 1, 100000)) p.pool_size = int(*i);
    } else if (key == "min_pool_size") {
      if (auto i = integer(v, key, 0, 100000)) p.min_pool_size = int(*i);
    } else if (key == "server_lifetime") {
      if (auto d = seconds(v, key)) p.server_lifetime = *d;
    } else if (key == "server_idle_timeout") {
      if (auto d = seconds(v, key)) p.server_idle_timeout = *d;
    } else if (key == "client_idle_timeout") {
      if (auto d = seconds(v, key)) p.client_idle_timeout = *d;
    } else if (key == "query_wait_timeout") {
      if (auto d = seconds(v, key)) p.query_wait_timeout = *d;
    } else if (key == "server_connect_timeout") {
      if (auto d = seconds(v, key)) p.server_connect_timeout = *d;
    } else if (key == "max_prepared_statements") {
      if (auto i = integer(v, key, 0, 100000)) p.max_prepared_statements = int(*i);
    } else if (key == "session_state") {
      if (auto s = str(v, key)) {
        if (*s == "pin") p.reject_session_state = false;
        else if (*s == "reject") p.reject_session_state = true;
        else error(v, fmt::format("'session_state' must be \"pin\" or \"reject\", not \"{}\"", *s));
      }
    }
  }

  const toml::table* table(const toml::node& n, std::string_view name) {
    if (auto t = n.as_table()) return t;
    error(n, fmt::format("[{}] must be a table", name));
    return nullptr;
  }
};

bool split_host_port(std::string_view hp, std::string& host, uint16_t& port) {
  size_t c = hp.rfind(':');
  if (c == std::string_view::npos || c == 0) return false;
  host = std::string(hp.substr(0, c));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned p = 0;
  auto ps = hp.substr(c + 1);
  auto [ptr, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), p);
  if (ec != std::errc() || ptr != ps.data() + ps.size() || p == 0 || p > 65535) return false;
  port = uint16_t(p);
  return true;
}

/// Deterministic per-user salt, so a reload keeps the same verifier for the same password.
std::string derived_salt(std::string_view user, std::string_view password) {
  auto d = auth::hmac_sha256(std::string(password), "keel-salt:" + std::string(user));
  return std::string(auth::as_view(d).substr(0, 16));
}

void finish(Config& c, Parser& ps) {
  if (c.workers == 0) c.workers = int(std::max(1u, std::thread::hardware_concurrency()));
  for (auto& [name, db] : c.databases) {
    if (db.dbname.empty()) db.dbname = name;
    if (db.pool.min_pool_size > db.pool.pool_size)
      ps.errors.push_back({0, fmt::format("database '{}': min_pool_size exceeds pool_size", name)});
  }
  if (c.databases.empty()) ps.errors.push_back({0, "no [databases.NAME] configured"});
  if (c.auth_type == AuthType::scram_sha_256 && c.users.empty())
    ps.errors.push_back({0, "auth_type is scram-sha-256 but no [users.NAME] configured"});
}

}  // namespace

ParseResult parse_config(std::string_view text, std::string_view source_name) {
  ParseResult out;
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    out.errors.push_back({int(e.source().begin.line), std::string(e.description())});
    return out;
  }
  Parser ps;
  auto cfg = std::make_shared<Config>();
  Config& c = *cfg;

  // [pool] first: databases inherit from it whatever order the file has.
  if (auto* n = root.get("pool")) {
    if (auto* t = ps.table(*n, "pool"))
      ps.each(*t, "pool", {"pool_mode", "pool_size", "min_pool_size", "server_lifetime", "server_idle_timeout",
                           "client_idle_timeout", "query_wait_timeout", "server_connect_timeout", "session_state",
                           "max_prepared_statements"},
              [&](std::string_view k, const toml::node& v) { ps.pool_key(c.pool_defaults, k, v); });
  }
  for (auto&& [k, v] : root) {
    std::string_view sec = k.str();
    if (sec == "pool") continue;
    if (sec == "keel") {
      auto* t = ps.table(v, sec);
      if (!t) continue;
      const toml::node* socket_dir_node = nullptr;
      ps.each(*t, "keel",
              {"listen", "workers", "auth_type", "max_client_conn", "max_message_size", "client_login_timeout",
               "tcp_defer_accept", "share_listen", "io_uring_sends", "io_uring_reads", "unix_socket_dir", "unix_socket_mode", "unix_socket_group",
               "admin_users", "log_level"},
              [&](std::string_view key, const toml::node& n) {
                if (key == "listen") {
                  if (auto s = ps.str(n, key); s && !split_host_port(*s, c.listen_host, c.listen_port))
                    ps.error(n, "'listen' must be host:port");
                } else if (key == "workers") {
                  if (auto i = ps.integer(n, key, 0, 256)) c.workers = int(*i);
                } else if (key == "auth_type") {
                  if (auto s = ps.str(n, key)) {
                    if (*s == "scram-sha-256") c.auth_type = AuthType::scram_sha_256;
                    else if (*s == "trust") c.auth_type = AuthType::trust;
                    else ps.error(n, fmt::format("'auth_type' must be \"scram-sha-256\" or \"trust\", not \"{}\"", *s));
                  }
                } else if (key == "max_client_conn") {
                  if (auto i = ps.integer(n, key, 1, 10'000'000)) c.max_client_conn = int(*i);
                } else if (key == "max_message_size") {
                  if (auto i = ps.integer(n, key, 1024, 1 << 30)) c.max_message_size = uint32_t(*i);
                } else if (key == "client_login_timeout") {
                  if (auto d = ps.seconds(n, key)) c.client_login_timeout = *d;
                } else if (key == "tcp_defer_accept") {
                  if (auto i = ps.integer(n, key, 0, 3600)) c.tcp_defer_accept = int(*i);
                } else if (key == "share_listen") {
                  if (auto b = ps.boolean(n, key)) c.share_listen = *b;
                } else if (key == "io_uring_sends") {
                  if (auto b = ps.boolean(n, key)) c.io_uring_sends = *b;
                } else if (key == "io_uring_reads") {
                  if (auto b = ps.boolean(n, key)) c.io_uring_reads = *b;
                } else if (key == "unix_socket_dir") {
                  if (auto s = ps.str(n, key)) {
                    if (!s->empty() && !is_socket_dir(*s)) ps.error(n, "'unix_socket_dir' must be an absolute path (or \"\")");
                    else c.unix_socket_dir = *s, socket_dir_node = &n;
                  }
                } else if (key == "unix_socket_mode") {
                  if (auto s = ps.str(n, key)) {
                    unsigned mode = 0;
                    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), mode, 8);
                    if (s->empty() || ec != std::errc() || end != s->data() + s->size() || mode > 0777)
                      ps.error(n, fmt::format("'unix_socket_mode' must be octal permissions such as \"0770\", not \"{}\"", *s));
                    else c.unix_socket_mode = mode;
                  }
                } else if (key == "unix_socket_group") {
                  if (auto s = ps.str(n, key)) c.unix_socket_group = *s;
                } else if (key == "admin_users") {
                  auto* arr = n.as_array();
                  if (!arr) { ps.error(n, "'admin_users' must be an array of strings"); return; }
                  for (auto& e : *arr)
                    if (auto s = ps.str(e, key)) c.admin_users.push_back(*s);
                } else if (key == "log_level") {
                  if (auto s = ps.str(n, key)) {
                    static const std::vector<std::string> ok = {"trace", "debug", "info", "warn", "error", "off"};
                    if (std::find(ok.begin(), ok.end(), *s) == ok.end()) ps.error(n, "unknown 'log_level'");
                    else c.log_level = *s;
                  }
                }
              });
      if (socket_dir_node) ps.socket_path_fits(*socket_dir_node, "'unix_socket_dir'", c.unix_socket_dir, c.listen_port);
    } else if (sec == "databases" || sec == "users") {
      auto* t = ps.table(v, sec);
      if (!t) continue;
      for (auto&& [name_key, node] : *t) {
        std::string name(name_key.str());
        std::string label = fmt::format("{}.{}", sec, name);
        auto* dt = ps.table(node, label);
        if (!dt) continue;
        if (sec == "databases") {
          if (name == "keel") { ps.error(node, "database name 'keel' is reserved for the admin console"); continue; }
          DatabaseConfig db;
          const toml::node* host_node = nullptr;
          db.name = name;
          db.pool = c.pool_defaults;
          ps.each(*dt, label, {"host", "port", "dbname", "server_user", "server_password", "pool_mode", "pool_size", "min_pool_size", "session_state", "max_prepared_statements"},
                  [&](std::string_view key, const toml::node& n) {
                    if (key == "host") { if (auto s = ps.str(n, key)) db.host = *s, host_node = &n; }
                    else if (key == "port") { if (auto i = ps.integer(n, key, 1, 65535)) db.port = uint16_t(*i); }
                    else if (key == "dbname") { if (auto s = ps.str(n, key)) db.dbname = *s; }
                    else if (key == "server_user") { db.server_user = ps.str(n, key); }
                    else if (key == "server_password") { db.server_password = ps.str(n, key); }
                    else ps.pool_key(db.pool, key, n);
                  });
          if (host_node && is_socket_dir(db.host)) ps.socket_path_fits(*host_node, label + ".host", db.host, db.port);
          c.databases[name] = std::move(db);
        } else {
          UserConfig u;
          u.name = name;
          std::optional<std::string> password;
          ps.each(*dt, label, {"password", "scram_verifier", "server_password"},
                  [&](std::string_view key, const toml::node& n) {
                    if (key == "password") password = ps.str(n, key);
                    else if (key == "server_password") u.server_password = ps.str(n, key);
                    else if (auto s = ps.str(n, key)) {
                      u.verifier = auth::ScramVerifier::parse(*s);
                      if (!u.verifier) ps.error(n, "'scram_verifier' is not a valid SCRAM-SHA-256 verifier");
                    }
                  });
          if (password) {
            if (u.verifier) ps.error(node, fmt::format("[{}]: give either password or scram_verifier, not both", label));
            u.verifier = auth::ScramVerifier::from_password(*password, derived_salt(name, *password));
            if (!u.server_password) u.server_password = password;
          }
          if (!u.verifier && !u.server_password)
            ps.error(node, fmt::format("[{}] needs password or scram_verifier", label));
          c.users[name] = std::move(u);
        }
      }
    } else {
      ps.error(v, fmt::format("unknown section [{}]", sec));
    }
  }
  finish(c, ps);
  std::stable_sort(ps.errors.begin(), ps.errors.end(), [](auto& a, auto& b) { return a.line < b.line; });
  out.errors = std::move(ps.errors);
  if (out.errors.empty()) out.config = std::move(cfg);
  return out;
}

ParseResult load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ParseResult r;
    r.errors.push_back({0, "cannot read " + path});
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

namespace {
std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out.push_back(char(v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}
}  // namespace

ParseResult config_from_quickstart(const QuickStart& q) {
  ParseResult out;
  auto fail = [&](std::string m) {
    out.errors.push_back({0, std::move(m)});
    return out;
  };
  std::string_view url = q.primary_url;
  for (std::string_view scheme : {"postgres://", "postgresql://"})
    if (url.substr(0, scheme.size()) == scheme) { url.remove_prefix(scheme.size()); break; }
  if (url.size() == q.primary_url.size()) return fail("--primary must be postgres://USER:PASS@HOST:PORT/DB");
  size_t at = url.rfind('@'), slash = url.find('/', at == std::string_view::npos ? 0 : at);
  if (at == std::string_view::npos || slash == std::string_view::npos)
    return fail("--primary must be postgres://USER:PASS@HOST:PORT/DB");
  auto userinfo = url.substr(0, at), hostport = url.substr(at + 1, slash - at - 1);
  auto db = percent_decode(url.substr(slash + 1));
  size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) return fail("--primary needs USER:PASS");
  std::string user = percent_decode(userinfo.substr(0, colon)), pass = percent_decode(userinfo.substr(colon + 1));
  auto cfg = std::make_shared<Config>();
  DatabaseConfig d;
  d.name = db;
  d.dbname = db;
  if (hostport.find(':') == std::string_view::npos) {
    d.host = std::string(hostport);
  } else if (!split_host_port(hostport, d.host, d.port)) {
    return fail("--primary: bad HOST:PORT");
  }
  if (!split_host_port(q.listen, cfg->listen_host, cfg->listen_port)) return fail("--listen must be host:port");
  if (q.pool_mode == "session") cfg->pool_defaults.mode = PoolMode::session;
  else if (q.pool_mode != "transaction") return fail("--pool-mode must be transaction or session");
  if (q.pool_size < 1) return fail("--pool-size must be at least 1");
  cfg->pool_defaults.pool_size = q.pool_size;
  cfg->workers = q.workers;
  d.pool = cfg->pool_defaults;
  if (db.empty() || user.empty()) return fail("--primary needs a user and a database");
  cfg->databases[db] = std::move(d);
  UserConfig u;
  u.name = user;
  u.verifier = auth::ScramVerifier::from_password(pass, derived_salt(user, pass));
  u.server_password = pass;
  cfg->users[user] = std::move(u);
  cfg->admin_users.push_back(user);
  Parser ps;
  finish(*cfg, ps);
  out.errors = std::move(ps.errors);
  if (out.errors.empty()) out.config = std::move(cfg);
  return out;
}

}  // namespace keel::config
