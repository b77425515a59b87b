#pragma once
// Short names for the Asio pieces keel uses. Include only from .cpp files and Asio-facing headers.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <time.h>

namespace keel {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
/// Clock::now() at the kernel tick's resolution (a few ms): CLOCK_MONOTONIC_COARSE is the same
/// clock as steady_clock's CLOCK_MONOTONIC, read from the vDSO without the TSC. For stamps and
/// checks measured in seconds (activity, lifetime, idle time) on the per-transaction path.
inline Clock::time_point coarse_now() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return Clock::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}
/// Every socket, timer and coroutine runs on one worker's io_context: its own executor type,
/// not the type-erased any_io_executor, so no completion copies or queries an erased executor.
using Executor = asio::io_context::executor_type;
/// A connected stream socket of either family keel speaks over: TCP, or a Unix-domain socket
/// (a server whose host is a directory, as libpq reads it).
using Stream = asio::generic::stream_protocol;
using Socket = asio::basic_stream_socket<Stream, Executor>;
using Acceptor = asio::basic_socket_acceptor<Stream, Executor>;
using Resolver = asio::ip::basic_resolver<tcp, Executor>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;
template <class T = void>
using awaitable = asio::awaitable<T, Executor>;
using error_code = boost::system::error_code;
/// Completion token that returns (error_code, ...) as a tuple instead of throwing.
inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable_t<Executor>());
}  // namespace keel
