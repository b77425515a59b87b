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

Acceptor open_listener(asio::io_context& io, const std::string& host, uint16_t port, int defer_accept_s) {
  error_code ec;
  tcp::endpoint ep = resolve_endpoint(io, host, port, ec);
  if (ec) throw boost::system::system_error(ec, "resolve " + host);
  Acceptor acc(io);
  acc.open(ep.protocol());
  acc.set_option(Acceptor::reuse_address(true));
  acc.set_option(tcp::no_delay(true));  // accepted sockets inherit it (see net::accept_now)
  // A client speaks first: wake for its first bytes, not for its connect (one wake-up less per
  // connection: accepted right after the handshake, its socket is usually still empty).
  if (defer_accept_s > 0 &&
      ::setsockopt(acc.native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_accept_s, sizeof defer_accept_s) != 0)
    throw boost::system::system_error(error_code(errno, asio::error::get_system_category()), "TCP_DEFER_ACCEPT");
  int one = 1;
  ::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  acc.bind(ep);
  acc.listen(4096);
  acc.non_blocking(true);  // net::accept_now never waits
  return acc;
}

}  // namespace keel::net
