#include "session/runtime.hpp"

#include "auth/crypto.hpp"
#include "core/log.hpp"
#include "session/worker_context.hpp"

namespace keel::session {

Runtime::Runtime(config::ConfigPtr cfg)
    : config(std::move(cfg)), registry(config->workers), mock_seed(auth::random_bytes(32)) {
  for (int i = 0; i < config->workers; ++i) workers.push_back(std::make_unique<net::Worker>(i));
  for (auto& w : workers) contexts.push_back(std::make_unique<WorkerContext>(*this, *w));
}

Runtime::~Runtime() { stop(); }

std::vector<asio::io_context*> Runtime::ios() const {
  std::vector<asio::io_context*> out;
  for (auto& w : workers) out.push_back(&w->io());
  return out;
}

void Runtime::start() {
  if (!config->share_listen && !workers.empty())
    net::ensure_no_listener(workers.front()->io(), config->listen_host, config->listen_port);
  net::PreparedUnixSocket prepared;
  if (!config->unix_socket_dir.empty() && !contexts.empty()) {
    net::UnixSocketSpec spec{config::socket_path(config->unix_socket_dir, config->listen_port),
                             config->unix_socket_mode, config->unix_socket_group, config->share_listen};
    // The original descriptor lives on an io_context of its own, closed after every worker has
    // its duplicate: no worker's epoll keeps an entry for a descriptor that is gone.
    asio::io_context opener;
    Acceptor original = net::open_unix_listener(opener, spec, prepared);
    try {
      for (size_t i = 0; i < contexts.size(); ++i)
        contexts[i]->listen_unix(net::share_listener(workers[i]->io(), original));
    } catch (...) {
      net::discard_unix_listener(prepared);
      throw;
    }
    // Named only now that every worker holds it: a failure before leaves the path as it was
    // (in a take-over, still the old keel's). Named before the TCP port listens: once that
    // accepts, the socket is there too. A failure from here gives the path back.
    net::publish_unix_listener(spec, prepared);
    socket_file = prepared.file;
  }
  try {
    for (auto& c : contexts) c->listen();
    for (auto& c : contexts) c->start();
    for (auto& w : workers) {
      std::string why = w->start(config->io_uring_sends, config->io_uring_reads);
      if (!why.empty())
        KEEL_WARN(fmt::format("w{}", w->id()), "io_uring_sends, io_uring_reads: sending and reading without io_uring ({})", why);
    }
  } catch (...) {
    net::unpublish_unix_listener(prepared);
    socket_file = {};
    throw;
  }
  net::settle_unix_listener(prepared);
}

void Runtime::stop() {
  for (auto& w : workers) w->stop();
  for (auto& w : workers) w->join();
  net::remove_socket_file(socket_file);
  socket_file = {};
}

}  // namespace keel::session
