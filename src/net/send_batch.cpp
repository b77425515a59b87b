#include "net/send_batch.hpp"

#include <liburing.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/log.hpp"
#include "net/edge_io.hpp"

#ifdef KEEL_EDGE_IO
#include <boost/asio/detail/scheduler.hpp>
#endif

namespace keel::net {

namespace {
constexpr unsigned kRingEntries = 256;
/// Completions of sends waiting for room can pile up (one per slow client); more than this wait in
/// the kernel's overflow list until reap() has them moved in.
constexpr unsigned kCompletionEntries = 4096;
/// While a send waits for room, the reactor wakes at least this often (microseconds) to take its
/// completion, should none interrupt its wait.
constexpr long kWaitingTick = 10'000;
/// A reactor run's reads go through the ring when at least this many sockets have one: a lone
/// read costs one system call either way, and a plain recv() less work than the ring (a single
/// client, 5 interleaved rounds of 10 s twice: about 1% more transactions at 2.5% less CPU).
constexpr size_t kMinPrefetch = 2;
/// Marks a completion's user data as a prefetched read's (Entry pointers are aligned).
constexpr uintptr_t kReadTag = 1;

#if defined(__SANITIZE_ADDRESS__)
/// Sanitizer builds (the test suites) check that queued bytes reach the socket they were
/// written to: a close that skipped settle() could let a new socket take the number.
constexpr bool kCheckSockets = true;
#else
constexpr bool kCheckSockets = false;
#endif
uint64_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? uint64_t(st.st_ino) : 0;
}
}  // namespace

struct SendBatch::Ring {
  io_uring ring{};
  bool ready = false;
  ~Ring() {
    if (ready) io_uring_queue_exit(&ring);
  }
  /// A free submission entry: when all are taken, what they hold goes to the kernel first. Null
  /// if the kernel takes none of them now.
  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    if (!s && submit()) s = io_uring_get_sqe(&ring);
    return s;
  }
  /// False if io_uring_enter failed (EAGAIN or EBUSY: completions have no room yet): the entries
  /// stay in the ring and go with the next submission.
  bool submit() {
    int r;
    do r = io_uring_submit(&ring);
    while (r == -EINTR);
    if (r < 0) KEEL_DEBUG("net", "io_uring_submit: {}", std::strerror(-r));
    return r >= 0;
  }
};

/// One coroutine waiting in idle(): woken (its timer cancelled) when its entry is done.
struct SendBatch::Waiter {
  SendBatch* batch;
  Timer timer;
  bool done = false;
  error_code ec;
  Waiter(SendBatch* b, Executor ex) : batch(b), timer(ex, Clock::time_point::max()) {}
  ~Waiter() {
    if (!done) batch->forget(this);
  }
};

#ifdef KEEL_EDGE_IO
namespace ad = boost::asio::detail;
namespace edge {
// The scheduler's task and its mutex (private in Asio), reached as edge_io.hpp reaches the reactor's.
struct TaskTag {
  using type = ad::scheduler_task* ad::scheduler::*;
  friend type member(TaskTag);
};
struct MutexTag {
  using type = ad::conditionally_enabled_mutex ad::scheduler::*;
  friend type member(MutexTag);
};
template struct Reach<TaskTag, &ad::scheduler::task_>;
template struct Reach<MutexTag, &ad::scheduler::mutex_>;
// What prefetch() looks at in the reactor run's results: which queued operations are a socket's
// epoll events (descriptor_state, by its completion function), the events, and the socket's
// queued read op, and whether that op is keel's own (RecvOpBase, by its perform function).
using Descriptor = ad::epoll_reactor::descriptor_state;
struct FuncTag {
  using type = void (*ad::scheduler_operation::*)(void*, ad::scheduler_operation*, const error_code&, std::size_t);
  friend type member(FuncTag);
};
struct EventsTag {
  using type = unsigned int ad::scheduler_operation::*;
  friend type member(EventsTag);
};
struct DescriptorCompleteTag {
  using type = void (*)(void*, ad::scheduler_operation*, const error_code&, std::size_t);
  friend type member(DescriptorCompleteTag);
};
struct OpsTag {
  using type = ad::op_queue<ad::reactor_op> (Descriptor::*)[ad::epoll_reactor::max_ops];
  friend type member(OpsTag);
};
struct PerformTag {
  using type = ad::reactor_op::status (*ad::reactor_op::*)(ad::reactor_op*);
  friend type member(PerformTag);
};
template struct Reach<FuncTag, &ad::scheduler_operation::func_>;
template struct Reach<EventsTag, &ad::scheduler_operation::task_result_>;
template struct Reach<DescriptorCompleteTag, &Descriptor::do_complete>;
template struct Reach<OpsTag, &Descriptor::op_queue_>;
template struct Reach<PerformTag, &ad::reactor_op::perform_func_>;
}  // namespace edge
using edge::MutexTag;
using edge::TaskTag;

/// Stands in for the scheduler's task (the epoll reactor): submits the batch before each wait.
struct SendBatch::Hook final : ad::scheduler_task {
  SendBatch* batch;
  ad::scheduler* sched;
  ad::scheduler_task* real;

  void run(long usec, ad::op_queue<ad::scheduler_operation>& ops) override {
    if (batch->submit()) usec = 0;
    else if (!batch->live_.empty() && (usec < 0 || usec > kWaitingTick)) usec = kWaitingTick;
    real->run(usec, ops);
    if (batch->uses_.reads) prefetch(ops);
  }

  /// The reads the sockets epoll reported readable are about to do (each read op's perform, one
  /// recv() per socket as the scheduler reaches it), done now, all in one io_uring_enter. Each
  /// recv is non-blocking (MSG_DONTWAIT: io_uring returns EAGAIN rather than waiting), so all
  /// complete within the submission; none is left in flight (a buffer the kernel still writes).
  void prefetch(ad::op_queue<ad::scheduler_operation>& ops) {
    reads.clear();
    io_uring* ring = &batch->ring_->ring;
    for (ad::scheduler_operation* op = ops.front(); op; op = ad::op_queue_access::next(op)) {
      if (op->*member(edge::FuncTag{}) != member(edge::DescriptorCompleteTag{})) continue;
      if (!(op->*member(edge::EventsTag{}) & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      auto* d = (edge::Descriptor*)op;  // (a private base: the C-style cast may name it)
      ad::reactor_op* r = (d->*member(edge::OpsTag{}))[ad::epoll_reactor::read_op].front();
      if (!r || r->*member(edge::PerformTag{}) != &edge::RecvOpBase::do_perform) continue;
      auto* read = static_cast<edge::RecvOpBase*>(r);
      if (!read->reads()) continue;  // an edge wait: done without a syscall anyway
      reads.push_back({read, d});
    }
    if (reads.size() < kMinPrefetch) {  // one recv: the op's own recv() costs less than the ring's
      reads.clear();
      return;
    }
    for (size_t i = 0; i < reads.size(); ++i) {
      io_uring_sqe* s = io_uring_get_sqe(ring);
      if (!s) {  // the rest read on their own
        reads.resize(i);
        break;
      }
      auto b = reads[i].op->buffer();
      io_uring_prep_recv(s, reads[i].op->socket(), b.data(), b.size(), MSG_DONTWAIT);
      io_uring_sqe_set_data(s, tag(i));
    }
    if (reads.empty()) return;
    left = reads.size();
    batch->ring_->submit();
    batch->reap();
    if (left > 0) {
      // Not expected (MSG_DONTWAIT): a recv left waiting is cancelled, and waited for.
      for (auto& p : reads)
        if (!p.done)
          if (io_uring_sqe* s = batch->ring_->sqe()) {
            io_uring_prep_cancel(s, tag(size_t(&p - reads.data())), 0);
            io_uring_sqe_set_data(s, nullptr);
          }
      while (left > 0) {
        if (int r = io_uring_submit_and_wait(ring, 1); r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
          KEEL_ERROR("net", "io_uring_submit_and_wait: {}", std::strerror(-r));
          std::abort();  // a read the kernel may still write: nothing safe to do but stop
        }
        batch->reap();
      }
    }
    // What the reads found is what the reactor knows: drained, or not (a read that filled its
    // buffer). perform() agrees when it runs; a cancel before then keeps this.
    for (auto& p : reads) edge::remember(p.desc, p.more);
  }
  void interrupt() override { real->interrupt(); }

  /// A prefetched read's user data: its index in `reads`, tagged apart from Entry pointers.
  static void* tag(size_t i) { return reinterpret_cast<void*>(uintptr_t(i) << 1 | kReadTag); }

  /// A prefetched read's completion (reap()): `res` bytes, or -errno.
  void read_done(uintptr_t tagged, int res) {
    size_t i = size_t(tagged >> 1);
    if (i >= reads.size() || reads[i].done) return;
    Pending& p = reads[i];
    p.done = true;
    --left;
    if (res == -ECANCELED || res == -EINTR) {
      p.more = true;  // not expected: nothing was read; the op reads as it would have
    } else {
      p.more = p.op->prefetched(res >= 0 ? res : -1, res >= 0 ? 0 : -res);
      if (res != -EAGAIN) ++batch->prefetched_;
    }
  }

  struct Pending {
    edge::RecvOpBase* op;
    edge::Descriptor* desc;
    bool done = false;
    bool more = true;  ///< not known drained afterwards
  };
  std::vector<Pending> reads;  ///< this run's prefetches (kept: no allocation per run)
  size_t left = 0;             ///< ... not completed yet

  void swap_in(bool in) {
    ad::conditionally_enabled_mutex::scoped_lock lock(sched->*member(MutexTag{}));
    auto& task = sched->*member(TaskTag{});
    if (in) {
      real = task;
      task = this;
    } else if (task == this) {
      task = real;
    }
  }
};

std::unique_ptr<SendBatch> SendBatch::attach(asio::io_context& io, std::string& why, BatchUses uses) {
  auto& sched = asio::use_service<ad::scheduler>(io);
  (void)asio::use_service<ad::reactor>(io);  // the scheduler's task exists from here on
  if (!(sched.*member(TaskTag{}))) {
    why = "the io_context has no reactor task";
    return nullptr;
  }
  std::unique_ptr<SendBatch> b(new SendBatch);
  b->ring_ = std::make_unique<Ring>();
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = kCompletionEntries;
  if (int r = io_uring_queue_init_params(kRingEntries, &b->ring_->ring, &params); r < 0) {
    why = std::string("io_uring_queue_init: ") + std::strerror(-r);
    return nullptr;
  }
  b->ring_->ready = true;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&b->ring_->ring)) {
    bool send = io_uring_opcode_supported(probe, IORING_OP_SEND);
    bool recv = io_uring_opcode_supported(probe, IORING_OP_RECV);
    io_uring_free_probe(probe);
    if (!send || !recv) {
      why = "this kernel's io_uring has no send or recv operation";
      return nullptr;
    }
  }
  b->uses_ = uses;
  b->hook_ = std::make_unique<Hook>();
  b->hook_->batch = b.get();
  b->hook_->sched = &sched;
  b->hook_->swap_in(true);
  return b;
}

SendBatch::~SendBatch() {
  if (hook_) hook_->swap_in(false);
  if (current_ == this) current_ = nullptr;
  // Coroutines still waiting (destroyed with the io_context, later) must not reach back here.
  for (const auto& e : live_)
    for (Waiter* w : e->waiters) w->done = true;
  ring_.reset();  // before the entries whose bytes its sends point at
}
#else
struct SendBatch::Hook {};
SendBatch::~SendBatch() = default;
std::unique_ptr<SendBatch> SendBatch::attach(asio::io_context&, std::string& why, BatchUses) {
  why = "this build's Asio is not the epoll reactor keel hooks (Boost 1.81)";
  return nullptr;
}
#endif

SendBatch::SendBatch() = default;

SendBatch::Entry* SendBatch::add(int fd) {
  std::unique_ptr<Entry> own;
  if (spare_.empty()) {
    own = std::make_unique<Entry>();
  } else {
    own = std::move(spare_.back());
    spare_.pop_back();
  }
  Entry* e = own.get();
  e->fd = fd;
  e->submitted = e->settled = false;
  e->off = 0;
  if (kCheckSockets) e->ino = inode_of(fd);
  live_.push_back(std::move(own));
  ++queued_;
  return e;
}

bool SendBatch::submit() {
  woke_ = false;
  reap();
  while (queued_ > 0) {
    for (const auto& own : live_) {
      Entry* e = own.get();
      if (e->submitted) continue;
      if (io_uring_sq_space_left(&ring_->ring) == 0) break;  // these first; the rest next round
      if (kCheckSockets && e->off == 0 && inode_of(e->fd) != e->ino) {
        KEEL_ERROR("net", "bytes queued for descriptor {} would reach another socket (closed without settle())",
                   e->fd);
        std::abort();
      }
      io_uring_sqe* s = io_uring_get_sqe(&ring_->ring);
      // MSG_WAITALL: a send that fills the socket's buffer goes on with the rest as room comes, in the kernel.
      io_uring_prep_send(s, e->fd, e->bytes.data() + e->off, e->bytes.size() - e->off, MSG_NOSIGNAL | MSG_WAITALL);
      io_uring_sqe_set_data(s, e);
      e->submitted = true;
      --queued_;
    }
    bool went = ring_->submit();
    reap();  // most sends complete within the submission: their entries are free again
    if (!went) break;  // the rest with the next run of the reactor (which wakes within kWaitingTick)
  }
  return woke_;
}

void SendBatch::reap() {
  io_uring_cqe* cqe;
  unsigned head, seen = 0;
  io_uring_for_each_cqe(&ring_->ring, head, cqe) {
    ++seen;
    void* data = io_uring_cqe_get_data(cqe);
    if (!data) continue;  // a cancel's own completion
#ifdef KEEL_EDGE_IO
    if (reinterpret_cast<uintptr_t>(data) & kReadTag) {
      hook_->read_done(reinterpret_cast<uintptr_t>(data), cqe->res);
      continue;
    }
#endif
    auto* e = static_cast<Entry*>(data);
    int res = cqe->res;
    if (res > 0) {
      e->off += size_t(res);
      if (e->off == e->bytes.size()) finish(e, {});
      else if (e->settled) finish(e, asio::error::operation_aborted);
      else requeue(e);  // sent in part: the rest waits for room
    } else if ((res == -EAGAIN || res == -EINTR) && !e->settled) {
      requeue(e);
    } else {
      finish(e, res == 0 ? error_code(asio::error::connection_aborted)
                         : error_code(-res, asio::error::get_system_category()));
    }
  }
  io_uring_cq_advance(&ring_->ring, seen);
  // Completions the ring had no room for wait in the kernel: have them moved in, then take them.
  if (io_uring_cq_has_overflow(&ring_->ring) && io_uring_get_events(&ring_->ring) >= 0) reap();
}

void SendBatch::requeue(Entry* e) {
  e->submitted = false;
  ++queued_;
}

void SendBatch::wake(Entry* e, error_code ec) {
  for (Waiter* w : e->waiters) {
    w->done = true;
    w->ec = ec;
    w->timer.cancel();
    woke_ = true;
  }
  e->waiters.clear();
}

void SendBatch::finish(Entry* e, error_code ec) {
  auto it = std::find_if(live_.begin(), live_.end(), [e](const auto& p) { return p.get() == e; });
  std::unique_ptr<Entry> own = std::move(*it);
  live_.erase(it);
  if (ec && ec != asio::error::operation_aborted && ec != asio::error::broken_pipe &&
      ec != asio::error::connection_reset && ec != asio::error::not_connected && ec != asio::error::bad_descriptor)
    KEEL_WARN("net", "a send through io_uring to descriptor {} failed: {}", e->fd, ec.message());
  wake(e, ec);
  if (spare_.size() >= kKeepSpare) return;  // a burst's: freed with `own`
  e->bytes.clear();
  if (e->bytes.capacity() > kKeepCapacity) e->bytes.shrink_to_fit();
  e->fd = -1;
  spare_.push_back(std::move(own));
}

void SendBatch::forget(Waiter* w) {
  for (const auto& e : live_) std::erase(e->waiters, w);
}

awaitable<error_code> SendBatch::idle(int fd) {
  for (;;) {
    Entry* e = find(fd);
    if (!e) co_return error_code();
    if (!e->submitted) {
      submit();
      continue;
    }
    KEEL_DEBUG("net", "a write to descriptor {} waits for room behind {} bytes sent through io_uring", fd,
               e->bytes.size() - e->off);
    Waiter w(this, co_await asio::this_coro::executor);
    e->waiters.push_back(&w);
    co_await w.timer.async_wait(nothrow);
    if (w.ec) co_return w.ec;
  }
}

void SendBatch::settle(int fd) {
  Entry* e = find(fd);
  if (!e) return;
  if (!e->submitted) {
    submit();
    if (!(e = find(fd))) return;
  }
  // Still waiting for room: the connection is being dropped; so is the send. A writer waiting
  // behind it learns now, before its socket goes (its completion comes later).
  e->settled = true;
  wake(e, asio::error::operation_aborted);
  if (io_uring_sqe* s = ring_->sqe()) {
    io_uring_prep_cancel(s, e, 0);
    io_uring_sqe_set_data(s, nullptr);
    ring_->submit();
  }
}

size_t SendBatch::waiting() const {
  return size_t(std::count_if(live_.begin(), live_.end(), [](const auto& e) { return e->submitted; }));
}

}  // namespace keel::net
