#include "admin/console.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "protocol/encoder.hpp"

namespace keel::admin {

namespace {

std::string normalize(std::string_view sql) {
  std::string s;
  for (char c : sql) s.push_back(char(std::toupper(uint8_t(c))));
  while (!s.empty() && (std::isspace(uint8_t(s.back())) || s.back() == ';')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(uint8_t(s[b]))) ++b;
  s.erase(0, b);
  std::string out;  // fold runs of white space
  for (char c : s) {
    if (std::isspace(uint8_t(c))) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

int64_t sum(const pool::PoolShared& p, Counter pool::PoolStats::*field) {
  int64_t t = 0;
  for (auto& s : p.stats) t += (s.*field).get();
  return t;
}

using Row = std::vector<std::optional<std::string>>;

std::string table(const std::vector<std::string>& cols, const std::vector<Row>& rows, std::string_view tag) {
  std::string out;
  protocol::Encoder enc(out);
  enc.row_description(cols);
  for (auto& r : rows) enc.data_row(r);
  enc.command_complete(fmt::format("{} {}", tag, rows.size()));
  return out;
}

std::string show_pools(const pool::PoolRegistry& reg) {
  std::vector<Row> rows;
  for (auto* p : reg.all()) {
    auto n = [&](Counter pool::PoolStats::*f) { return std::optional<std::string>(std::to_string(sum(*p, f))); };
    rows.push_back({p->database, p->user, n(&pool::PoolStats::cl_active), n(&pool::PoolStats::cl_waiting),
                    n(&pool::PoolStats::sv_active), n(&pool::PoolStats::sv_idle),
                    std::to_string(p->open.load(std::memory_order_relaxed)), std::to_string(p->settings.pool_size),
                    std::string(config::to_string(p->settings.mode)), n(&pool::PoolStats::cl_pinned)});
  }
  return table({"database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_total", "pool_size",
                "pool_mode", "cl_pinned"},
               rows, "SHOW");
}

std::string show_stats(const pool::PoolRegistry& reg) {
  std::vector<Row> rows;
  for (auto* p : reg.all()) {
    auto n = [&](Counter pool::PoolStats::*f) { return std::optional<std::string>(std::to_string(sum(*p, f))); };
    rows.push_back({p->database, p->user, n(&pool::PoolStats::xact_count), n(&pool::PoolStats::query_count),
                    n(&pool::PoolStats::wait_count), n(&pool::PoolStats::wait_us), n(&pool::PoolStats::wait_timeouts),
                    n(&pool::PoolStats::server_connects), n(&pool::PoolStats::server_connect_errors),
                    n(&pool::PoolStats::pins), n(&pool::PoolStats::prepares), n(&pool::PoolStats::prepare_reuses),
                    n(&pool::PoolStats::prepare_evictions)});
  }
  return table({"database", "user", "total_xact_count", "total_query_count", "total_wait_count", "total_wait_us",
                "total_wait_timeouts", "server_connects", "server_connect_errors", "total_pins", "total_prepares",
                "total_prepare_reuses", "total_prepare_evictions"},
               rows, "SHOW");
}

std::string show_mem(const std::vector<const BufferPool*>& buffers) {
  std::vector<Row> rows;
  for (size_t w = 0; w < buffers.size(); ++w) {
    size_t used = buffers[w]->in_use(), spare = buffers[w]->free_count();
    rows.push_back({std::to_string(w), std::to_string(used), std::to_string(spare),
                    std::to_string((used + spare) * BufferPool::kSize / 1024)});
  }
  return table({"worker", "buffers_in_use", "buffers_free", "buffer_kib"}, rows, "SHOW");
}

}  // namespace

std::string execute(const pool::PoolRegistry& registry, const std::vector<const BufferPool*>& buffers,
                    std::string_view sql) {
  std::string cmd = normalize(sql);
  if (cmd == "SHOW MEM") return show_mem(buffers);
  if (cmd == "SHOW POOLS") return show_pools(registry);
  if (cmd == "SHOW STATS") return show_stats(registry);
  if (cmd == "SHOW VERSION") return table({"version"}, {{std::string("keel " KEEL_VERSION)}}, "SHOW");
  if (cmd == "SHOW HELP" || cmd == "HELP")
    return table({"command"}, {{std::string("SHOW POOLS")}, {std::string("SHOW STATS")}, {std::string("SHOW MEM")},
                                  {std::string("SHOW VERSION")}}, "SHOW");
  if (cmd.empty()) {
    std::string out;
    protocol::Encoder(out).empty_query();
    return out;
  }
  std::string out;
  protocol::Encoder(out).error_response(
      PgError::error(sqlstate::syntax_error, "unknown admin console command; try SHOW HELP"));
  return out;
}

}  // namespace keel::admin
