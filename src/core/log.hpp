#pragma once
// Logging with connection ids: "[w1 c42] message". Query text and passwords only at debug.
#include <spdlog/spdlog.h>

#include <atomic>

namespace keel::log {
/// The level, kept here too and read inline: spdlog::should_log() reaches the logger through
/// spdlog's registry, a few calls into the shared library, on every check (dozens a login).
inline std::atomic<int> g_level{spdlog::level::info};  // spdlog's own default
/// Sets spdlog's level and this copy of it (start-up).
inline void set_level(spdlog::level::level_enum l) {
  spdlog::set_level(l);
  g_level.store(l, std::memory_order_relaxed);
}
inline bool enabled(spdlog::level::level_enum l) { return l >= g_level.load(std::memory_order_relaxed); }
}  // namespace keel::log

#define KEEL_LOG(level, ids, ...) \
  do { if (keel::log::enabled(level)) spdlog::log(level, "[{}] {}", ids, fmt::format(__VA_ARGS__)); } while (0)
#define KEEL_DEBUG(ids, ...) KEEL_LOG(spdlog::level::debug, ids, __VA_ARGS__)
#define KEEL_INFO(ids, ...) KEEL_LOG(spdlog::level::info, ids, __VA_ARGS__)
#define KEEL_WARN(ids, ...) KEEL_LOG(spdlog::level::warn, ids, __VA_ARGS__)
#define KEEL_ERROR(ids, ...) KEEL_LOG(spdlog::level::err, ids, __VA_ARGS__)
