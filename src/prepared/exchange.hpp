#pragma once
// The responses a server connection owes, in order, while keel renames, adds or answers
// extended-query messages on a client's behalf (transaction mode). Pure: the pump feeds it each
// server message and it says what the client gets instead.
//
// Every message keel sends to the server, or answers itself, pushes one Entry; the server's
// responses are matched to entries in order (protocol-flow "Extended Query"):
//   Parse → ParseComplete | Error; Bind → BindComplete | Error; Describe → [ParameterDescription]
//   RowDescription | NoData | Error; Execute → ... CommandComplete | EmptyQueryResponse |
//   PortalSuspended | Error; Close → CloseComplete | Error; Sync, Query, FunctionCall → ... ReadyForQuery.
// NoticeResponse, NotificationResponse and ParameterStatus may come at any time and match nothing.
// After an Error in extended query the server skips every message until Sync: entries between
// the failed one and the Sync get no response and their effects are undone, last first.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/pg_error.hpp"
#include "prepared/statements.hpp"

namespace keel::prepared {

enum class Expect : uint8_t {
  parse,          ///< a client Parse forwarded as it came (unnamed)
  bind,
  describe,
  execute,
  close,
  sync,
  query,          ///< simple Query or FunctionCall: everything up to ReadyForQuery
  parse_new,      ///< a client's named Parse, renamed: creates `server_name` (undone if it fails)
  synth_parse,    ///< a client's named Parse of a statement this server has: keel says ParseComplete
  synth_close,    ///< a client's Close of its named statement: keel says CloseComplete
  inj_parse,      ///< keel prepares `server_name` before a Bind/Describe: ParseComplete swallowed
  inj_close,      ///< keel closes `server_name` (eviction, or a nudge): CloseComplete swallowed
  stand_in,       ///< keel's Describe of an absent statement: its Error is replaced by `error`
  query_dealloc,  ///< Query "PREPARE k AS SELECT; DEALLOCATE k" standing for DEALLOCATE client_name
};

/// What an entry knows besides its kind. Plain messages (unnamed statements, Execute, Sync:
/// the bulk of the traffic) need none, so their entries stay small and allocate nothing.
struct EntryDetail {
  std::string client_name;  ///< parse_new, synth_parse, synth_close, query_dealloc
  std::string server_name;  ///< parse_new, inj_parse, inj_close (none for a nudge)
  StatementPtr def;         ///< parse_new, synth_parse, inj_parse; synth_close: what was closed
  std::unique_ptr<PgError> error;  ///< stand_in
};

struct Entry {
  Expect kind = Expect::query;
  bool orphan = false;  ///< parse_new under a throwaway name: close it once it exists
  uint8_t seen = 0;     ///< query_dealloc: CommandCompletes seen
  std::unique_ptr<EntryDetail> d;
  EntryDetail& detail() {
    if (!d) d = std::make_unique<EntryDetail>();
    return *d;
  }
};

/// What the pump does with one server message.
struct Verdict {
  bool forward = true;  ///< pass the message on as it came (false: keel swallows it)
};

class Exchange {
 public:
  explicit Exchange(ClientStatements& client) : client_(&client) {}

  void push(Expect k) {
    // Room for an extended-protocol round (Parse Bind Describe Execute Sync) at once, on first
    // use (not at construction: an idle client holds none).
    if (entries_.capacity() == 0) entries_.reserve(8);
    entries_.emplace_back();
    entries_.back().kind = k;
  }
  void push(Entry e) { entries_.push_back(std::move(e)); }
  bool empty() const { return head_ == entries_.size(); }
  size_t size() const { return entries_.size() - head_; }
  /// Every entry still owed is keel's own answer: no server response will come to release them,
  /// so the reader sends a nudge (a Close of a name that does not exist, answered CloseComplete).
  bool only_synthesized() const;

  /// One server message, at the start of a frame (body = its body when whole, else empty).
  /// Appends what the client gets before it to `before` and after it to `after` (keel's own
  /// answers that fall there), updates the client's and the server's statements.
  Verdict on_server(char type, std::string_view body, ServerStatements& server, std::string& before,
                    std::string& after) {
    // A DataRow completes nothing, and changes nothing unless keel's own answers are at the head:
    // the rows of a result set skip the matching.
    if (type == 'D' && (empty() || !synthesized(head().kind))) return {};
    if (!skipping_ && !empty() && completes_plain(head().kind, type, body)) {
      // Most of the traffic: the answer to a message keel passed on as it came. What match()
      // does for it, without its other cases.
      pop();
      emit_ready(after);
      return {};
    }
    return match(type, body, server, before, after);
  }

  /// Forgets everything owed (the server connection is gone or was reset).
  void clear();

 private:
  Verdict match(char type, std::string_view body, ServerStatements& server, std::string& before, std::string& after);
  Entry& head() { return entries_[head_]; }
  void pop() {
    entries_[head_].d.reset();  // let go of what it holds
    if (++head_ == entries_.size()) {
      entries_.clear();
      head_ = 0;
    } else if (head_ >= 256) {
      compact();
    }
  }
  /// A pipeline that never drains: drops the entries already answered, now and then.
  void compact();
  /// The message that completes an entry of kind `k` (the table at the top); none completes
  /// keel's own answers (synth_*) or a stand-in.
  static bool answered_by(Expect k, char type) {
    switch (k) {
      case Expect::parse: case Expect::parse_new: case Expect::inj_parse: return type == '1';
      case Expect::bind: return type == '2';
      case Expect::describe: return type == 'T' || type == 'n';
      case Expect::execute: return type == 'C' || type == 'I' || type == 's';
      case Expect::close: case Expect::inj_close: return type == '3';
      case Expect::sync: case Expect::query: case Expect::query_dealloc: return type == 'Z';
      default: return false;
    }
  }
  /// A message keel passed on as it came: its answer goes to the client and changes no table.
  static bool plain(Expect k) {
    switch (k) {
      case Expect::parse: case Expect::bind: case Expect::describe: case Expect::execute:
      case Expect::close: case Expect::sync: case Expect::query: return true;
      default: return false;
    }
  }
  /// CommandComplete of DISCARD ALL or DEALLOCATE ALL: the server forgot every statement.
  static bool deallocates_all(char type, std::string_view body) {
    return type == 'C' && (body == std::string_view("DISCARD ALL\0", 12) ||
                           body == std::string_view("DEALLOCATE ALL\0", 15));
  }
  /// `type` completes the plain entry `k` and matching it has no other effect (match() does the rest).
  static bool completes_plain(Expect k, char type, std::string_view body) {
    return plain(k) && answered_by(k, type) && !deallocates_all(type, body);
  }
  /// keel's own answers at the head of the queue go out now (into `out`).
  void emit_ready(std::string& out) {
    if (!empty() && synthesized(head().kind)) emit_synthesized(out);
  }
  void emit_synthesized(std::string& out);
  static bool synthesized(Expect k) { return k == Expect::synth_parse || k == Expect::synth_close; }
  void undo(Entry& e, ServerStatements& server);
  void all_deallocated(ServerStatements& server);

  ClientStatements* client_;
  std::vector<Entry> entries_;
  size_t head_ = 0;
  bool skipping_ = false;  ///< the server skips to the next Sync
};

}  // namespace keel::prepared
