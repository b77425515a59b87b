#pragma once
// A worker: one thread, one io_context, one listening socket (SO_REUSEPORT), one buffer pool.
// Everything a session or server connection touches lives on its worker; other threads reach
// it only by posting to io().
#include <functional>
#include <memory>
#include <thread>

#include "core/buffer_pool.hpp"
#include "net/asio.hpp"
#include "net/send_batch.hpp"

namespace keel::net {

class Worker {
 public:
  /// One thread runs io(); sockets are used on it only, so the reactor needs no per-socket
  /// locking (other threads only post, which stays locked).
  explicit Worker(int id) : id_(id), io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  int id() const { return id_; }
  asio::io_context& io() { return io_; }
  BufferPool& buffers() { return buffers_; }

  /// Runs the io_context on a new thread until stop(). With `batch_sends`, its small sends go out
  /// through a SendBatch (io_uring), with `batch_reads` its reads are prefetched there; returns
  /// why not where that cannot be set up ("" otherwise).
  std::string start(bool batch_sends = false, bool batch_reads = false);
  void stop() { io_.stop(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  /// Runs fn on this worker's thread.
  template <class Fn>
  void post(Fn&& fn) {
    asio::post(io_, std::forward<Fn>(fn));
  }

 private:
  int id_;
  asio::io_context io_;
  BufferPool buffers_;
  std::unique_ptr<SendBatch> batch_;  // after io_: unhooked before io_ goes
  std::thread thread_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
};

/// Opens a listening socket on host:port with SO_REUSEPORT so each worker can have its own,
/// non-blocking, with TCP_NODELAY for the sockets it accepts and, when `defer_accept_s` > 0,
/// TCP_DEFER_ACCEPT: a connection is ready to accept once its first bytes came (or after that
/// many seconds). Throws boost::system::system_error on failure (start-up only).
Acceptor open_listener(asio::io_context& io, const std::string& host, uint16_t port, int defer_accept_s = 0);

/// Throws boost::system::system_error (address in use) when another socket listens on
/// host:port, even one that set SO_REUSEPORT: open_listener's own sockets would join it.
void ensure_no_listener(asio::io_context& io, const std::string& host, uint16_t port);

/// A Unix socket's file as bound: removed at exit only while it is still that file.
struct SocketFile {
  std::string path;
  uint64_t dev = 0, ino = 0;
};

/// Where and for whom a Unix socket listens.
struct UnixSocketSpec {
  std::string path;
  unsigned mode = 0777;  ///< the file's permissions
  std::string group;     ///< the file's group by name; "" = the process's own
  bool take_over = false;
};

/// A Unix listener bound and listening under a temporary name beside its path (who may connect
/// already set), not yet reachable by the path: publish_unix_listener gives it the name.
struct PreparedUnixSocket {
  std::string tmp;       ///< the temporary name
  bool replace = false;  ///< a socket file was at the path (stale, or live and taken over)
  SocketFile file;       ///< the path, with the socket's dev/ino (rename() keeps them)
  std::string kept;      ///< once published over a file: a second name of that file, until settled
};

/// Readies a Unix socket for spec.path, with its mode and group, non-blocking, under a temporary
/// name in the same directory. A socket file at the path that nobody listens on (left by a
/// process that is gone) will be replaced; one a live process listens on makes it throw, unless
/// `take_over`: then the name will go to the new socket (the old process keeps what it accepted,
/// its listener unreachable by name). Throws boost::system::system_error on failure, leaving no
/// file (start-up only).
Acceptor open_unix_listener(asio::io_context& io, const UnixSocketSpec& spec, PreparedUnixSocket& out);

/// Gives the prepared socket its name in one rename(): a client never finds the name missing or
/// not listening. With nothing at the path before, only if nothing has appeared there since (a
/// second keel starting at the same moment is refused, as bind() refused it); over a stale file
/// only if it is still stale. Throws on failure, after removing the temporary name. Over a file
/// (a take-over), that file keeps a second name (p.kept) until settle_unix_listener or
/// unpublish_unix_listener.
void publish_unix_listener(const UnixSocketSpec& spec, PreparedUnixSocket& p);

/// The start-up went on after the publish: the file replaced (if any) loses its second name.
void settle_unix_listener(PreparedUnixSocket& p);

/// The start-up failed after the publish: the path goes back to the file that was there (the old
/// keel's socket, in a take-over), or away if there was none; only while the path is still ours.
void unpublish_unix_listener(PreparedUnixSocket& p);

/// Removes the temporary name of a socket never published.
void discard_unix_listener(const PreparedUnixSocket& p);

/// The same listening socket for a worker's io_context (a duplicate descriptor, which Asio
/// deregisters from its epoll when it closes it): a Unix socket has no SO_REUSEPORT, so every
/// worker waits on the one socket and accept_now() lets whichever wakes first take each
/// connection. Open the original on an io_context no worker runs (Runtime::start).
Acceptor share_listener(asio::io_context& io, Acceptor& listener);

/// Removes the socket file if it is still the one bound (a keel that took the name over has bound
/// a new file there: left alone).
void remove_socket_file(const SocketFile& file);

/// Resolves host (numeric or name) once, at start-up or connect time.
tcp::endpoint resolve_endpoint(asio::io_context& io, const std::string& host, uint16_t port, error_code& ec);

}  // namespace keel::net
