#pragma once
// What a statement does to session state that cannot move between server connections
// (LISTEN, session advisory locks, temporary tables, WITH HOLD cursors, SQL PREPARE, SET of a
// parameter keel does not carry), found with libpg_query. Pure; thread-safe.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace keel::sql {

struct SessionStateDelta {
  int statements = 0;       ///< how many statements the SQL holds (not part of any())
  int listens = 0;          ///< LISTEN (+1) / UNLISTEN name (-1)
  bool unlisten_all = false;
  int advisory_locks = 0;   ///< pg_advisory_lock... (+1) / pg_advisory_unlock... (-1)
  bool advisory_unlock_all = false;
  bool temp_table = false;  ///< CREATE TEMP TABLE / SELECT INTO TEMP / CREATE TEMP VIEW|SEQUENCE
  bool discard_temp = false;
  int hold_cursors = 0;     ///< DECLARE ... WITH HOLD (+1) / CLOSE name (-1)
  bool close_all = false;
  std::vector<std::string> prepared;     ///< PREPARE name
  std::vector<std::string> deallocated;  ///< DEALLOCATE name
  bool deallocate_all = false;
  bool session_set = false; ///< SET (not LOCAL) of a parameter keel does not carry; SET ROLE ...
  /// SET name = value / SET name TO DEFAULT / RESET name of a tracked parameter the server does
  /// not report (statement_timeout, extra_float_digits ...): keel can carry it for the client
  /// (value empty with `param_reset`). When it cannot (inside a transaction), it pins instead.
  std::string carried_param, carried_value;
  bool param_reset = false;
  bool reset_tag = false;   ///< it was RESET (tag "RESET"), not SET ... TO DEFAULT (tag "SET")
  bool reset_all = false;   ///< RESET ALL (or DISCARD ALL)
  bool discard_all = false;

  bool any() const {
    return listens || unlisten_all || advisory_locks || advisory_unlock_all || temp_table || discard_temp ||
           hold_cursors || close_all || !prepared.empty() || !deallocated.empty() || deallocate_all || session_set ||
           reset_all || discard_all || !carried_param.empty();
  }
};

/// A cheap look at the text: false means the SQL certainly touches no such state (most
/// statements: the parser is not run for them).
bool may_touch_session_state(std::string_view sql) noexcept;

/// may_touch_session_state() with a memory: applications prepare the same few statement texts
/// over and over, so the texts it cleared are kept (direct-mapped by hash, each slot one exact
/// text of up to kMaxText bytes) and a text seen again costs a hash and a compare, not a scan.
/// Meant for Parse texts: simple queries carry their literals and rarely repeat (scan those).
/// One per worker thread; not thread-safe.
class StatementFilter {
 public:
  static constexpr size_t kSlots = 256;
  static constexpr size_t kMaxText = 512;
  bool may_touch(std::string_view sql);

 private:
  struct Slot {
    uint64_t hash = 0;
    std::string text;
  };
  std::vector<Slot> slots_ = std::vector<Slot>(kSlots);
};

/// Parses the SQL (all its statements) and reports their effect. SQL that does not parse has
/// no effect (the server will refuse it too).
SessionStateDelta classify_session_state(std::string_view sql);

/// A client's pinning state: the sum of the deltas its statements had. Prepared statements
/// (SQL PREPARE and protocol-level named Parse share one namespace on the server) are kept by
/// name, since closing an unknown name is not an error.
struct SessionPins {
  int listens = 0, advisory_locks = 0, hold_cursors = 0;
  bool temp_tables = false, session_set = false;
  std::vector<std::string> statements;

  void apply(const SessionStateDelta& d);
  void prepared(std::string_view name);
  void closed(std::string_view name);
  bool pinned() const {
    return listens > 0 || advisory_locks > 0 || hold_cursors > 0 || !statements.empty() || temp_tables ||
           session_set;
  }
};

}  // namespace keel::sql
