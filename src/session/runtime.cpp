#include "session/runtime.hpp"

#include "auth/crypto.hpp"
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
  for (auto& c : contexts) c->listen();
  if (!config->unix_socket_dir.empty() && !contexts.empty()) {
    net::UnixSocketSpec spec{config::socket_path(config->unix_socket_dir, config->listen_port),
                             config->unix_socket_mode, config->unix_socket_group, config->share_listen};
    auto first = net::open_unix_listener(workers.front()->io(), spec, socket_file);
    for (size_t i = 1; i < contexts.size(); ++i)
      contexts[i]->listen_unix(net::share_listener(workers[i]->io(), first));
    contexts.front()->listen_unix(std::move(first));
  }
  for (auto& c : contexts) c->start();
  for (auto& w : workers) w->start();
}

void Runtime::stop() {
  for (auto& w : workers) w->stop();
  for (auto& w : workers) w->join();
  net::remove_socket_file(socket_file);
  socket_file = {};
}

}  // namespace keel::session
