#pragma once
// Logging with connection ids: "[w1 c42] message". Query text and passwords only at debug.
#include <spdlog/spdlog.h>

#define KEEL_LOG(level, ids, ...) \
  do { if (spdlog::should_log(level)) spdlog::log(level, "[{}] {}", ids, fmt::format(__VA_ARGS__)); } while (0)
#define KEEL_DEBUG(ids, ...) KEEL_LOG(spdlog::level::debug, ids, __VA_ARGS__)
#define KEEL_INFO(ids, ...) KEEL_LOG(spdlog::level::info, ids, __VA_ARGS__)
#define KEEL_WARN(ids, ...) KEEL_LOG(spdlog::level::warn, ids, __VA_ARGS__)
#define KEEL_ERROR(ids, ...) KEEL_LOG(spdlog::level::err, ids, __VA_ARGS__)
