#pragma once
// One client connection, from startup to close. Lives on one worker.
//
// Phases (run()): startup → authentication → ready. In the ready phase two coroutines share the
// session: the client reader (serve(): client bytes → decisions → server) and, while a server
// connection is attached, the server pump (pump(): server bytes → client). Only one writes to
// the client at a time: the pump while a server is attached, the reader otherwise.
//
// Transaction mode: a server is attached when a message needs one and released when the server
// reports ReadyForQuery 'I' with nothing the client sent still unanswered. Session mode: attached
// at the first message, kept until the client leaves, then reset with DISCARD ALL.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/buffer_pool.hpp"
#include "core/pg_error.hpp"
#include "net/asio.hpp"
#include "net/signal.hpp"
#include "session/gather.hpp"
#include "pool/pool.hpp"
#include "prepared/exchange.hpp"
#include "prepared/rewrite.hpp"
#include "sql/param_sync.hpp"
#include "sql/session_state.hpp"

namespace keel::auth {
class ScramServer;
}
namespace keel::protocol {
struct StartupPacket;
}

namespace keel::session {

using sql::ParamList;
using sql::find_param;
using sql::is_param_name;
using sql::is_reportable;
using sql::parse_options;
using sql::set_param;
using sql::sync_sql;
using sql::tracked_param;

class WorkerContext;
using EffectPtr = std::unique_ptr<sql::SessionStateDelta>;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(WorkerContext& ctx, Socket sock);
  ~Session();

  /// Spawns the session's coroutine on its worker.
  void start();
  /// A CancelRequest with this session's key: where it goes on, the server connection the session
  /// holds now with work outstanding (none for a wrong key or with nothing to cancel).
  std::optional<pool::CancelTarget> cancel_target(int32_t secret) const;
  /// Sweep: disconnect when idle past client_idle_timeout.
  void check_idle(Clock::time_point now);
  /// Sweep: the sockets this session waits on that need one check since their last read
  /// (net/edge_io.hpp): add(fd, pump) for each; kick(pump) when one shows an error or hangup.
  template <class Add>
  void edge_checks(Add&& add) {
    if (check_reader_ && reading_) {
      check_reader_ = false;
      add(client_.native_handle(), false);
    }
    if (check_pump_ && pump_reading_ && server_) {
      check_pump_ = false;
      add(server_->sock.native_handle(), true);
    }
  }
  void kick(bool pump);

 private:
  // Phases.
  awaitable<void> run();
  /// Who the client says it is: needed during login only (the pool keeps the names after), so
  /// it lives in run()'s frame, not in the session an idle client keeps.
  struct Login {
    std::string user, database;
  };
  awaitable<bool> startup(std::vector<uint8_t>& in, Login& who);
  std::optional<PgError> accept_startup(const protocol::StartupPacket& sp, std::string& first, Login& who);
  /// `greeting`: what authentication still has to say (SASL final), sent with the login's answer.
  awaitable<bool> authenticate(std::vector<uint8_t>& in, std::string& greeting, const Login& who);
  std::optional<PgError> sasl_step(auth::ScramServer& scram, int step, const std::pair<char, std::string>& m,
                                   std::string& out);
  awaitable<bool> attach_pool(std::string& greeting, const Login& who);
  /// Serves the client until it leaves (false) or goes idle (true: park() next); `woken`: bytes
  /// are waiting (the park ended), read them before parking again.
  awaitable<bool> serve(std::vector<uint8_t>& leftover, bool woken = false);
  void park();
  awaitable<void> unpark(error_code ec);
  /// Starts one of the session's coroutines (run, pump, unpark) on its worker, holding the
  /// session. One function-object type for all three: Asio instantiates its spawn wrapper once
  /// per type, and each instantiation is code a new connection runs through (I-cache).
  void spawn(awaitable<void> (Session::*fn)(error_code), error_code ec = {});
  awaitable<void> run(error_code) { return run(); }
  awaitable<void> pump(error_code) { return pump(); }
  awaitable<void> end_idle();
  awaitable<void> pump();

  // Reader helpers (serve).
  struct Reader;
  struct Decision;
  void decide(Reader& r, char type, Decision& d) const;
  bool client_message_now(Reader& r, char type, Decision& d);
  awaitable<bool> on_client_message(Reader& r, char type, Decision& d);
  void forward(Reader& r, char type, Decision& d);
  awaitable<bool> ensure_server(Reader& r, char type);
  void attach(Reader& r, pool::ServerConnPtr c);
  void account(char type);
  /// What a Query/Parse does to session state; null (the usual case, allocating nothing) when none.
  EffectPtr session_effect(char type, const uint8_t* body, size_t len) const;
  bool would_pin(const sql::SessionStateDelta& d) const;
  void apply_session_effect(const sql::SessionStateDelta& d);
  void track_statement_names(char type, const uint8_t* body, size_t len);
  bool rewrite_statements(Reader& r, char type, const sql::SessionStateDelta* effect);
  void stage(Reader& r, size_t from, size_t skip = 0);
  prepared::Context statement_context(prepared::Counters& c);
  void count(const prepared::Counters& c);
  void count_pin_change(bool was_pinned);
  awaitable<bool> flush(Reader& r);
  awaitable<void> admin_query(std::string_view sql);
  awaitable<void> finish_reader();

  // Server helpers (pump).
  awaitable<void> finish_pump(bool server_dead);
  awaitable<bool> start_drain();
  awaitable<void> refuse_startup_params();
  void on_server_message(char type, const uint8_t* body, uint32_t len);
  void on_injected_reply(char type, const uint8_t* body, uint32_t len);
  bool settled() const { return pending_ == 0 && !unsynced_ && !copy_in_; }

  // Client output.
  awaitable<bool> send(const std::string& bytes);
  /// Sends `before` (if any) and the FATAL error in one write, and logs why the session ends.
  awaitable<void> fatal(const PgError& e, const std::string& before = {});
  awaitable<std::optional<std::pair<char, std::string>>> read_auth_message(std::vector<uint8_t>& in);
  awaitable<bool> read_login(std::vector<uint8_t>& in);

  std::string ids() const;

  WorkerContext& ctx_;
  Socket client_;
  config::ConfigPtr cfg_;
  uint64_t id_;
  int32_t key_pid_ = 0, key_secret_ = 0;
  const config::DatabaseConfig* db_ = nullptr;
  config::PoolMode mode_ = config::PoolMode::transaction;
  bool admin_ = false;
  bool counted_ = false;
  /// Transaction mode: the client's named statements follow it to any server connection
  /// (src/prepared); the ledger's exchange holds the responses the attached server owes, in order.
  bool track_statements_ = false;
  pool::Pool* pool_ = nullptr;
  ParamList wanted_;  ///< the client's own session parameters (startup, options, its SETs)
  ParamList startup_;  ///< ... as its startup packet gave them (what RESET returns to)
  /// A carried SET/RESET of a non-reportable parameter, applied to wanted_ once the server has
  /// answered the ReadyForQuery numbered `z` (counting from the session's first) without error.
  struct Carry {
    uint64_t z;
    std::string name, value;
    bool reset;
  };
  uint64_t zs_ = 0;             ///< ReadyForQuery messages received from servers so far
  uint64_t error_z_ = 0;        ///< the exchange (ReadyForQuery number) in which an error came last
  void on_ready_for_query();
  bool between_statements() const;
  void reset_to_startup(Reader& r, sql::SessionStateDelta& effect);
  sql::SessionPins pins_;  ///< session state that ties the client to its server connection
  /// What the session keeps beyond one message: the client's named statements and the responses
  /// the server owes (transaction mode), carried SET/RESETs waiting for their ReadyForQuery, and
  /// the exchanges whose "SET" tag the client sees as RESET. Made when first needed, given back
  /// when the client parks with none of it in use: an idle client holds none of it.
  struct Ledger {
    Ledger() = default;
    Ledger(Ledger&&) = delete;  // the exchange points at the statements beside it
    prepared::ClientStatements statements;
    prepared::Exchange exchange{statements};
    std::vector<Carry> carries;
    std::vector<uint64_t> retags;
    bool unused() const { return statements.size() == 0 && exchange.empty() && carries.empty() && retags.empty(); }
  };
  std::unique_ptr<Ledger> ledger_;
  Ledger& ledger() {
    if (!ledger_) ledger_ = std::make_unique<Ledger>();
    return *ledger_;
  }
  /// The pump's output when keel edits the server's bytes, and keel's answers around one server
  /// message (Exchange): made at the first attach, given back when the client parks.
  struct PumpScratch {
    Gather out;
    std::string before, after;
  };
  std::unique_ptr<PumpScratch> scratch_;

  // Server attachment and the exchange's accounting (see session.cpp for the rules).
  pool::ServerConnPtr server_;
  bool pump_running_ = false;
  bool pump_writing_ = false;
  int pending_ = 0;          ///< ReadyForQuery messages the server still owes
  bool unsynced_ = false;    ///< extended-query messages forwarded since the last Sync
  int syncs_since_cmd_ = 0;  ///< Syncs since the last Execute/Query (swallowed if that started COPY IN)
  bool copy_in_ = false;     ///< the server is in COPY IN (CopyInResponse seen)
  char tx_status_ = 'I';
  bool last_cmd_extended_ = false;  ///< the last command was Execute (true) or Query/FunctionCall
  bool server_fatal_seen_ = false;
  int injected_ = 0;                   ///< keel's own queries whose replies the pump swallows
  std::unique_ptr<PgError> injected_error_;
  bool drain_started_ = false;

  // Lifecycle.
  bool client_gone_ = false;  ///< the client left or is being closed: the pump stops writing to it
  bool reader_done_ = false;  ///< the reader has ended: the pump may write to the server to reset it
  bool closing_ = false;      ///< the pump closed the client (server died)
  bool idle_killed_ = false;
  bool logged_in_ = false;    ///< start-up and authentication are over (check_idle: client_login_timeout)
  bool parked_ = false;       ///< the reader waits for the client with no bytes buffered
  bool discard_until_sync_ = false;  ///< after an error in an extended exchange: skip to Sync
  bool buffered_wait_ = false;  ///< ... in a read that holds a buffer (busy clients)
  bool park_next_ = false;    ///< the sweep asked the reader to give its buffer back and wait without
  bool reading_ = false;      ///< the reader waits in a read of the client
  bool pump_reading_ = false; ///< the pump waits in a read of the server
  bool check_reader_ = false, check_pump_ = false;  ///< a read happened since the sweep last checked
  bool kick_reader_ = false, kick_pump_ = false;    ///< the sweep found a reset: force the next read
  Clock::time_point last_activity_;
  net::Signal pump_signal_;    ///< wakes the reader when the pump stops writing or ends
  /// The pump between transactions waits here for the next attach() (true); the reader gives
  /// false when it parks or ends, and the pump ends.
  net::Handoff pump_wake_;
};

}  // namespace keel::session
