#include "net/worker.hpp"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <vector>

#include <boost/asio/local/stream_protocol.hpp>

namespace keel::net {

void Worker::start() {
  guard_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(io_.get_executor());
  thread_ = std::thread([this] { io_.run(); });
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
  acc.bind(Stream::endpoint(ep));
  acc.listen(4096);
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
}  // namespace

Acceptor open_unix_listener(asio::io_context& io, const UnixSocketSpec& spec, SocketFile& file) {
  const std::string& path = spec.path;
  const gid_t gid = spec.group.empty() ? gid_t(-1) : group_id(spec.group);
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) fail(error_code(EEXIST, asio::error::get_system_category()), path + " is not a socket");
    if (someone_listens(path)) {
      if (!spec.take_over)
        fail(asio::error::address_in_use,
             "another process listens on " + path + " (keel.share_listen = true lets keel take the name over)");
      // A PostgreSQL server keeps a lock file beside its socket: never take a server's name.
      if (::access((path + ".lock").c_str(), F_OK) == 0)
        fail(asio::error::address_in_use, "a PostgreSQL server listens on " + path + " (its lock file is there)");
    }
  }
  // The socket is made ready under a name of its own in the same directory, then renamed over
  // `path` in one step: a client connecting meanwhile reaches the old listener (a take-over) or
  // this one, never a missing or not yet listening file. The kernel keeps the name a socket was
  // bound to (`ss -x` shows it): PATH.<pid> where it fits, else DIR/.k<pid>, which is never
  // longer than ".s.PGSQL.<port>" and so fits wherever `path` does.
  const std::string pid = std::to_string(::getpid());
  std::string tmp = path + "." + pid;
  if (tmp.size() >= sizeof(sockaddr_un::sun_path)) tmp = path.substr(0, path.rfind('/') + 1) + ".k" + pid;
  ::unlink(tmp.c_str());  // left by a keel with this pid that died here before renaming it
  Acceptor acc(io);
  acc.open(Stream(Local()));
  error_code ec;
  acc.bind(Stream::endpoint(Local::endpoint(tmp)), ec);
  if (ec) fail(ec, "bind " + tmp);
  // From here a failure leaves no file behind (main() ends with _exit, which skips Runtime::stop).
  auto unbind = [&](const std::string& what) {
    error_code e = last_error();
    ::unlink(tmp.c_str());
    fail(e, what);
  };
  // Who may connect, set before anyone can: the password still decides who logs in.
  if (gid != gid_t(-1) && ::chown(tmp.c_str(), uid_t(-1), gid) != 0) unbind("chown " + tmp);
  if (::chmod(tmp.c_str(), mode_t(spec.mode)) != 0 || ::stat(tmp.c_str(), &st) != 0) unbind("chmod " + tmp);
  acc.listen(4096, ec);
  if (!ec) acc.non_blocking(true, ec);  // net::accept_now never waits
  if (ec) {
    errno = ec.value();
    unbind("listen " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) unbind("rename " + tmp + " to " + path);
  file = {path, uint64_t(st.st_dev), uint64_t(st.st_ino)};
  return acc;
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
  struct stat st;
  if (file.path.empty() || ::stat(file.path.c_str(), &st) != 0) return;
  if (uint64_t(st.st_dev) == file.dev && uint64_t(st.st_ino) == file.ino) ::unlink(file.path.c_str());
}

}  // namespace keel::net

// A generic stream socket (TCP or Unix) costs an idle client no more than a TCP one did.
static_assert(sizeof(keel::Socket) == sizeof(boost::asio::basic_stream_socket<keel::tcp, keel::Executor>));
