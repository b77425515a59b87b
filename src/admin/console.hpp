#pragma once
// The admin console: clients connect to the database "keel" as an admin user and run SHOW
// commands over the simple query protocol. Reads the per-worker stats; never on the hot path.
#include <string>
#include <string_view>
#include <vector>

#include "core/buffer_pool.hpp"
#include "pool/pool.hpp"

namespace keel::admin {

/// Runs one console command; returns the protocol bytes to send (rows + CommandComplete, or an
/// ErrorResponse), without the final ReadyForQuery. Thread-safe (reads atomics only).
/// `buffers`: each worker's buffer pool, in worker order (SHOW MEM).
std::string execute(const pool::PoolRegistry& registry, const std::vector<const BufferPool*>& buffers,
                    std::string_view sql);

}  // namespace keel::admin
