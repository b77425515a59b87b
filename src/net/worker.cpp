#include "net/worker.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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
/// Sets an integer socket option Asio has no type for; throws, naming it, when refused.
void set_int_option(Acceptor& acc, int level, int name, int value, const char* what) {
  if (::setsockopt(acc.native_handle(), level, name, &value, sizeof value) != 0)
    throw boost::system::system_error(error_code(errno, asio::error::get_system_category()), what);
}

/// An unbound socket for host:port (resolved into `ep`) with SO_REUSEADDR: a restart binds past
/// its last run's connections in TIME_WAIT.
Acceptor open_socket(asio::io_context& io, const std::string& host, uint16_t port, tcp::endpoint& ep) {
  error_code ec;
  ep = resolve_endpoint(io, host, port, ec);
  if (ec) throw boost::system::system_error(ec, "resolve " + host);
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
    throw boost::system::system_error(
        ec, "another process listens on " + where + " (keel.share_listen = true lets keel listen beside it)");
  throw boost::system::system_error(ec, "bind " + where);
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

}  // namespace keel::net
