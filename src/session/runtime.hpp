#pragma once
// Process-wide state shared by all workers: the config snapshot, the pool registry, the client
// count. Everything else lives per worker (WorkerContext).
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "net/worker.hpp"
#include "pool/pool.hpp"

namespace keel::session {

class WorkerContext;

struct Runtime {
  explicit Runtime(config::ConfigPtr cfg);
  ~Runtime();

  config::ConfigPtr config;
  pool::PoolRegistry registry;
  std::atomic<int> clients{0};
  std::atomic<uint64_t> next_client_id{1};
  std::string mock_seed;  ///< random per process: salts the mock SCRAM exchange for unknown users
  std::vector<std::unique_ptr<net::Worker>> workers;
  std::vector<std::unique_ptr<WorkerContext>> contexts;
  std::vector<asio::io_context*> ios() const;
  net::SocketFile socket_file;  ///< the Unix socket keel listens on (keel.unix_socket_dir), if any

  /// Opens listeners and starts every worker thread.
  void start();
  /// Stops every worker, joins its thread and removes keel's Unix socket file.
  void stop();
};

}  // namespace keel::session
