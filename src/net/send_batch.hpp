#pragma once
// Sends batched into io_uring (config `io_uring_sends`): the small sends of one reactor turn go
// to the kernel in one io_uring_enter, made just before the worker waits in epoll_wait, where
// each would otherwise be a send() system call of its own (about 1 µs each on a PVM guest).
//
// write_now() hands a write here when its worker has a batch. Up to kMaxBatched bytes are copied
// and count as written at once: the caller's buffer is free again, and two writes to one socket
// in one turn go out as one send. A larger write goes out directly, after what is queued for its
// socket. Submissions carry MSG_NOSIGNAL | MSG_WAITALL without MSG_DONTWAIT: io_uring tries each
// send at once and, where the socket's buffer is full, waits for room (for all of it) itself.
// Until such a send completes its socket is held: write_now() leaves later writes to write_rest(),
// which waits in idle(), so bytes keep their order and a client that reads slowly still holds
// back what writes to it.
//
// A queued write's error reaches its writer only if it waits in idle(); otherwise the socket's
// next read sees the reset or EOF. Queued bytes name their socket by descriptor number, so they
// must be submitted before the socket closes (a new socket could get the number): settle() does
// that, and cancels a send still waiting for room (its writer is dropping the connection; one that
// ends with a message, a FATAL, waits for it first: all_sent()). Every shutdown and close of a
// socket that writes on a worker goes through settle() (net::settle()).
//
// The batch hooks the worker's io_context by standing in for its scheduler's task (the epoll
// reactor, reached in Boost 1.81's asio::detail): every run of the task, blocking or not, first
// submits what is queued. One batch per worker thread; other threads have none (current() null).
//
// Reads (config `io_uring_reads`): after the reactor's run, the same hook does in one
// io_uring_enter the recv() each socket epoll reported readable would do when its read op runs
// (edge_io.hpp's RecvOp: Hook::prefetch), when there are two or more. The recvs are non-blocking and complete within the
// submission; the ops' perform() then returns their results without a syscall.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "net/asio.hpp"

namespace keel::net {

/// What a worker's ring carries: the small sends (config io_uring_sends), the reads of each
/// reactor run (io_uring_reads: prefetched, see SendBatch::Hook::prefetch).
struct BatchUses {
  bool sends = true;
  bool reads = true;
};

class SendBatch {
 public:
  /// Writes larger than this go out directly: copying them would cost more than the call saved.
  static constexpr size_t kMaxBatched = 8192;
  /// Entries (a socket's queued bytes) kept for reuse once sent, each with up to kKeepCapacity
  /// bytes of buffer; beyond these, a burst's entries are freed as they finish.
  static constexpr size_t kKeepSpare = 256;
  static constexpr size_t kKeepCapacity = 16 * 1024;

  /// Sets up a ring and hooks it into io's scheduler, before a thread runs io. Null, with `why`,
  /// where io_uring cannot be used (writes then go out directly, as without a batch).
  static std::unique_ptr<SendBatch> attach(asio::io_context& io, std::string& why, BatchUses uses = {});
  /// Makes this the calling thread's batch, if it takes sends: the thread that runs the
  /// io_context, before it does.
  void bind_thread() { current_ = uses_.sends ? this : nullptr; }
  ~SendBatch();
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;

  /// This thread's batch, or null.
  static SendBatch* current() noexcept { return current_; }

  /// What write_now() does with a write of `total` bytes to fd.
  enum class Take : uint8_t {
    queued,  ///< copied; it goes out before the worker next waits
    direct,  ///< nothing of fd's is queued or in flight: write it now
    wait,    ///< a send of fd's waits for room: idle(fd) first, then write
  };
  template <class Buffers>
  Take take(int fd, const Buffers& bufs, size_t total) {
    Entry* e = find(fd);
    if (e && e->submitted) return Take::wait;
    if (total > kMaxBatched) {
      if (!e) return Take::direct;
      submit();  // what is queued first; still there, it now waits for room
      return find(fd) ? Take::wait : Take::direct;
    }
    if (!e) e = add(fd);
    for (auto it = asio::buffer_sequence_begin(bufs); it != asio::buffer_sequence_end(bufs); ++it) {
      asio::const_buffer b(*it);
      e->bytes.append(static_cast<const char*>(b.data()), b.size());
    }
    return Take::queued;
  }

  /// Whether fd has bytes queued or in flight here.
  bool holds(int fd) const { return find(fd) != nullptr; }
  /// Until fd has nothing here; the error of its last send, if that failed.
  awaitable<error_code> idle(int fd);
  /// Before fd is shut down or closed: its queued bytes go now; a send still waiting for room is
  /// cancelled.
  void settle(int fd);
  /// Submits what is queued and takes the completions that came. True when it woke a waiter
  /// (the reactor must not block: that waiter's completion is queued behind it).
  bool submit();

  /// Sends in flight that wait for room (for tests).
  size_t waiting() const;
  /// Reads done by the prefetch so far that found bytes, EOF or an error (for tests).
  size_t prefetched() const { return prefetched_; }
  /// Entries kept for reuse (for tests).
  size_t spare() const { return spare_.size(); }

 private:
  struct Waiter;
  struct Entry {
    int fd = -1;
    bool submitted = false;
    bool settled = false;  ///< its socket is closing: fd is no longer its own
    size_t off = 0;        ///< bytes of `bytes` sent so far
    std::string bytes;
    std::vector<Waiter*> waiters;
    uint64_t ino = 0;  ///< sanitizer builds: the socket's inode when queued, checked at submission
  };
  struct Ring;
  struct Hook;

  SendBatch();
  Entry* find(int fd) const {
    for (const auto& e : live_)
      if (e->fd == fd && !e->settled) return e.get();
    return nullptr;
  }
  Entry* add(int fd);
  void reap();
  void requeue(Entry* e);
  void finish(Entry* e, error_code ec);
  void wake(Entry* e, error_code ec);
  void forget(Waiter* w);

  std::vector<std::unique_ptr<Entry>> live_;  ///< queued or in flight, oldest first
  std::vector<std::unique_ptr<Entry>> spare_;  ///< at most kKeepSpare
  size_t queued_ = 0;  ///< entries of live_ not submitted
  bool woke_ = false;
  BatchUses uses_;
  size_t prefetched_ = 0;
  std::unique_ptr<Ring> ring_;
  std::unique_ptr<Hook> hook_;

  static inline thread_local SendBatch* current_ = nullptr;
};

/// Before a socket that may have written through its worker's batch is shut down or closed.
inline void settle(Socket& s) {
  if (SendBatch* b = SendBatch::current(); b && s.is_open()) b->settle(s.native_handle());
}

/// Until what the batch holds for the socket has gone out: for a message that must arrive before
/// the socket closes (settle() would cancel a send still waiting for room), as a write that waited
/// for all of its bytes did before. Its error, if that send failed.
inline awaitable<error_code> all_sent(Socket& s) {
  SendBatch* b = SendBatch::current();
  if (!b || !s.is_open() || !b->holds(s.native_handle())) co_return error_code();
  co_return co_await b->idle(s.native_handle());
}

}  // namespace keel::net
