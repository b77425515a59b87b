#include "net/worker.hpp"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>

#include "core/log.hpp"

namespace keel::net {

std::string Worker::start(bool batch_sends, bool batch_reads) {
  std::string why;
  if (batch_sends || batch_reads) batch_ = SendBatch::attach(io_, why, {batch_sends, batch_reads});
  guard_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(io_.get_executor());
  thread_ = std::thread([this] {
    if (batch_) batch_->bind_thread();
    io_.run();
  });
  return why;
}

tcp::endpoint resolve_endpoint(asio::io_context& io, const std::string& host, uint16_t port, error_code& ec) {
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) return {addr, port};
  Resolver r(io);
  auto results = r.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) {
    if (!ec) ec = asio::error::host_not_found;
    return {};
  }
  return *results.begin();
}

namespace {
[[noreturn]] void fail(error_code ec, const std::string& what) { throw boost::system::system_error(ec, what); }
error_code last_error() { return error_code(errno, asio::error::get_system_category()); }

/// Sets an integer socket option Asio has no type for; throws, naming it, when refused.
void set_int_option(Acceptor& acc, int level, int name, int value, const char* what) {
  if (::setsockopt(acc.native_handle(), level, name, &value, sizeof value) != 0) fail(last_error(), what);
}

/// An unbound socket for host:port (resolved into `ep`) with SO_REUSEADDR: a restart binds past
/// its last run's connections in TIME_WAIT.
Acceptor open_socket(asio::io_context& io, const std::string& host, uint16_t port, tcp::endpoint& ep) {
  error_code ec;
  ep = resolve_endpoint(io, host, port, ec);
  if (ec) fail(ec, "resolve " + host);
  Acceptor acc(io);
  acc.open(Stream(ep.protocol()));
  acc.set_option(Acceptor::reuse_address(true));
  return acc;
}
}  // namespace

void ensure_no_listener(asio::io_context& io, const std::string& host, uint16_t port) {
  // A bind without SO_REUSEPORT conflicts with any listener on the port (SO_REUSEADDR still lets
  // it past connections of an earlier run in TIME_WAIT). Never listened on, it leaves nothing.
  tcp::endpoint ep;
  Acceptor probe = open_socket(io, host, port, ep);
  error_code ec;
  probe.bind(Stream::endpoint(ep), ec);
  if (!ec) return;
  const std::string where = host.find(':') == std::string::npos ? host + ":" + std::to_string(port)
                                                                  : "[" + host + "]:" + std::to_string(port);
  if (ec == asio::error::address_in_use)
    fail(ec, "another process listens on " + where + " (keel.share_listen = true lets keel listen beside it)");
  fail(ec, "bind " + where);
}

Acceptor open_listener(asio::io_context& io, const std::string& host, uint16_t port, int defer_accept_s) {
  tcp::endpoint ep;
  Acceptor acc = open_socket(io, host, port, ep);
  acc.set_option(tcp::no_delay(true));  // accepted sockets inherit it (see net::accept_now)
  // Each worker listens on the same port; the kernel spreads connections over them. (Refused,
  // the second worker's bind would fail with a misleading "address in use": say so here.)
  set_int_option(acc, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
  // A client speaks first: wake for its first bytes, not for its connect (one wake-up less per
  // connection: accepted right after the handshake, its socket is usually still empty).
  if (defer_accept_s > 0) set_int_option(acc, IPPROTO_TCP, TCP_DEFER_ACCEPT, defer_accept_s, "TCP_DEFER_ACCEPT");
  error_code ec;
  acc.bind(Stream::endpoint(ep), ec);
  if (!ec) acc.listen(4096, ec);
  if (ec) fail(ec, "listen on " + host + ":" + std::to_string(port));
  acc.non_blocking(true);  // net::accept_now never waits
  return acc;
}

namespace {
using Local = asio::local::stream_protocol;

/// True when a process listens on the socket file at `path`. The probe connects without waiting:
/// a listener whose queue is full says so with EAGAIN, and is a listener all the same.
bool someone_listens(const std::string& path) {
  Local::socket probe(asio::system_executor{}, Local());
  probe.non_blocking(true);
  error_code ec;
  probe.connect(Local::endpoint(path), ec);
  return !ec || ec == asio::error::would_block || ec == asio::error::try_again;
}

/// The id of the group named `name`; throws when there is none.
gid_t group_id(const std::string& name) {
  struct group g, *found = nullptr;
  std::vector<char> buf(16384);
  int rc = ::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found);
  if (rc != 0 || !found)
    fail(error_code(rc ? rc : ENOENT, asio::error::get_system_category()), "unix_socket_group: no group named " + name);
  return found->gr_gid;
}

/// Start-up stops: another process listens on the socket file at `path`.
[[noreturn]] void listened_on(const std::string& path) {
  fail(asio::error::address_in_use,
       "another process listens on " + path + " (keel.share_listen = true lets keel take the name over)");
}

/// Refuses a live socket at `path` unless `take_over` (and never a PostgreSQL server's). Returns
/// whether a socket file is there (stale or taken over).
bool check_socket_path(const UnixSocketSpec& spec) {
  const std::string& path = spec.path;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return false;
  if (!S_ISSOCK(st.st_mode)) fail(error_code(EEXIST, asio::error::get_system_category()), path + " is not a socket");
  if (someone_listens(path)) {
    if (!spec.take_over) listened_on(path);
    // A PostgreSQL server keeps a lock file beside its socket: never take a server's name.
    if (::access((path + ".lock").c_str(), F_OK) == 0)
      fail(asio::error::address_in_use, "a PostgreSQL server listens on " + path + " (its lock file is there)");
  }
  return true;
}

/// Whether file.path still names the socket file bound (not one put there since).
bool names_it(const SocketFile& file) {
  struct stat st;
  return !file.path.empty() && ::stat(file.path.c_str(), &st) == 0 && uint64_t(st.st_dev) == file.dev &&
         uint64_t(st.st_ino) == file.ino;
}

/// What temporary_name() draws its random characters from.
constexpr std::string_view kNameChars = "abcdefghijklmnopqrstuvwxyz0123456789";

/// A name for the socket until it is published, in the same directory (rename() stays in one
/// file system): PATH.<8 random characters> where that fits in sun_path, else DIR/.k<7>, never
/// longer than ".s.PGSQL.<port>" and so fitting wherever `path` does. Random, not the pid: keels
/// in other PID namespaces may share the directory.
std::string temporary_name(const std::string& path) {
  unsigned char r[8];
  if (::getrandom(r, sizeof r, 0) != sizeof r) fail(last_error(), "getrandom");
  std::string suffix;
  for (unsigned char c : r) suffix += kNameChars[c % kNameChars.size()];
  std::string tmp = path + "." + suffix;
  if (tmp.size() >= sizeof(sockaddr_un::sun_path))
    tmp = path.substr(0, path.rfind('/') + 1) + ".k" + suffix.substr(0, 7);
  return tmp;
}

/// Whether `name` (a file name in path's directory) is one temporary_name(path) draws.
bool temporary_name_of(const std::string& name, const std::string& path) {
  const std::string base = path.substr(path.rfind('/') + 1);
  std::string_view rest;
  if (name.size() == base.size() + 9 && name.compare(0, base.size() + 1, base + ".") == 0)
    rest = std::string_view(name).substr(base.size() + 1);
  else if (name.size() == 9 && name.compare(0, 2, ".k") == 0)
    rest = std::string_view(name).substr(2);
  else
    return false;
  return rest.find_first_not_of(kNameChars) == std::string_view::npos;
}

/// Temporary names a keel stopped while starting (killed between its bind and its rename) left
/// beside the path: socket files nobody listens on, a minute old or more (a keel starting now
/// holds its own for a few milliseconds). Another keel's live name, or a second name kept for a
/// take-over (its file an old keel's, listening), stays.
void remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const auto slash = path.rfind('/');
  const fs::path dir = slash == std::string::npos ? fs::path(".") : fs::path(path.substr(0, slash + 1));
  const auto now = std::chrono::system_clock::now();
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!temporary_name_of(name, path)) continue;
    const std::string full = it->path().string();
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    if (now - std::chrono::system_clock::from_time_t(st.st_mtime) < std::chrono::minutes(1)) continue;
    if (someone_listens(full)) continue;
    if (::unlink(full.c_str()) == 0) KEEL_INFO("net", "removed {}, a socket file a keel that stopped while starting left", full);
  }
}
}  // namespace

Acceptor open_unix_listener(asio::io_context& io, const UnixSocketSpec& spec, PreparedUnixSocket& out) {
  const gid_t gid = spec.group.empty() ? gid_t(-1) : group_id(spec.group);
  out.replace = check_socket_path(spec);
  remove_stale_temporaries(spec.path);
  Acceptor acc(io);
  acc.open(Stream(Local()));
  error_code ec;
  for (int attempt = 0; attempt < 8; ++attempt) {  // a name taken already: draw another
    out.tmp = temporary_name(spec.path);
    acc.bind(Stream::endpoint(Local::endpoint(out.tmp)), ec);
    if (ec != asio::error::address_in_use) break;
  }
  if (ec) fail(ec, "bind " + out.tmp);
  // From here a failure leaves no file behind (main() ends with _exit, which skips Runtime::stop).
  auto unbind = [&](const std::string& what) {
    error_code e = last_error();
    discard_unix_listener(out);
    fail(e, what);
  };
  // Who may connect, set before anyone can: the password still decides who logs in.
  struct stat st;
  if (gid != gid_t(-1) && ::chown(out.tmp.c_str(), uid_t(-1), gid) != 0) unbind("chown " + out.tmp);
  if (::chmod(out.tmp.c_str(), mode_t(spec.mode)) != 0 || ::stat(out.tmp.c_str(), &st) != 0)
    unbind("chmod " + out.tmp);
  acc.listen(4096, ec);
  if (!ec) acc.non_blocking(true, ec);  // net::accept_now never waits
  if (ec) {
    errno = ec.value();
    unbind("listen " + out.tmp);
  }
  // rename() keeps the inode: remove_socket_file knows the published file by it.
  out.file = {spec.path, uint64_t(st.st_dev), uint64_t(st.st_ino)};
  return acc;
}

void publish_unix_listener(const UnixSocketSpec& spec, PreparedUnixSocket& p) {
  const char* tmp = p.tmp.c_str();
  const char* path = spec.path.c_str();
  auto refuse = [&](error_code ec, const std::string& what) {
    discard_unix_listener(p);
    fail(ec, what);
  };
  if (!p.replace && !spec.take_over) {
    // Nothing was there: take the name only if it is still free (another process starting at
    // the same moment may have published its own).
    if (::renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) return;
    if (errno == EEXIST) {
      discard_unix_listener(p);
      listened_on(spec.path);
    }
    if (errno != EINVAL) refuse(last_error(), "rename " + p.tmp + " to " + spec.path);
    // A file system without RENAME_NOREPLACE: a second link fails on an existing name alike.
    if (::link(tmp, path) != 0)
      refuse(errno == EEXIST ? error_code(asio::error::address_in_use) : last_error(),
             "another process listens on " + spec.path);
    ::unlink(tmp);
    return;
  }
  // A stale file (or, with take_over, a live socket) is there: replaced in one step. Looked at
  // again first: a stale file may have come to life since, and a server's never goes.
  try {
    check_socket_path(spec);
  } catch (...) {
    discard_unix_listener(p);
    throw;
  }
  // A second name for the file replaced, so that a start-up failing after this can give the path
  // back to it (a socket's file cannot be named again once it has no name). Without one (a file
  // system that refuses the link), such a failure leaves no file at the path.
  std::string kept = temporary_name(spec.path);
  if (::link(path, kept.c_str()) == 0) p.kept = std::move(kept);
  if (::rename(tmp, path) != 0) {
    error_code ec = last_error();
    settle_unix_listener(p);
    refuse(ec, "rename " + p.tmp + " to " + spec.path);
  }
}

void settle_unix_listener(PreparedUnixSocket& p) {
  if (!p.kept.empty()) ::unlink(p.kept.c_str());
  p.kept.clear();
}

void unpublish_unix_listener(PreparedUnixSocket& p) {
  if (!p.kept.empty() && names_it(p.file) && ::rename(p.kept.c_str(), p.file.path.c_str()) == 0) p.kept.clear();
  else remove_socket_file(p.file);
  settle_unix_listener(p);
}

void discard_unix_listener(const PreparedUnixSocket& p) {
  if (!p.tmp.empty()) ::unlink(p.tmp.c_str());
}

Acceptor share_listener(asio::io_context& io, Acceptor& listener) {
  int fd = ::fcntl(listener.native_handle(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) fail(last_error(), "dup listener");
  Acceptor acc(io);
  error_code ec;
  acc.assign(listener.local_endpoint().protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    fail(ec, "assign listener");
  }
  return acc;  // non-blocking: the flag belongs to the open file the two descriptors share
}

void remove_socket_file(const SocketFile& file) {
  if (names_it(file)) ::unlink(file.path.c_str());
}

}  // namespace keel::net

// A generic stream socket (TCP or Unix) costs an idle client no more than a TCP one did.
static_assert(sizeof(keel::Socket) == sizeof(boost::asio::basic_stream_socket<keel::tcp, keel::Executor>));
