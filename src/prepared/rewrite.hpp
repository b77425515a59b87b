#pragma once
// What a client's extended-query message becomes in transaction mode, where its named
// statements must exist on whichever server connection it holds now. Pure: decides from the
// client's and the server's statement tables, appends bytes for the server, pushes expectations.
//
// Parse "n"   new name: renamed to the server's name for that definition, or not sent at all
//             when the server has it (keel answers ParseComplete in order); an existing name:
//             42P05, as PostgreSQL says it, at the same point.
// Bind/Describe of "n": "n" is prepared on this server first if it is not (keel's Parse, its
//             ParseComplete swallowed), then renamed. Unknown names go as they came, so the server
//             reports them (26000) or finds the client's SQL-level PREPARE of that name.
// Close "n"   forgotten for the client, answered CloseComplete; the server keeps it for re-use.
// The server's cache is bounded: the least recently used statement is dropped to make room and
// closed on the server at the client's next message that starts outside a transaction (closing a
// statement closes its portals, which a transaction may still use).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "prepared/exchange.hpp"
#include "prepared/statements.hpp"
#include "protocol/messages.hpp"

namespace keel::prepared {

/// A name no statement ever has on the server: a Close of it is answered CloseComplete and
/// changes nothing (the nudge), a Describe of it fails with 26000 (the stand-in for keel's errors).
inline constexpr std::string_view kAbsentName = "_keel_none";

struct Counters {
  uint64_t parses = 0;     ///< Parse messages keel sent to a server for a named statement
  uint64_t reused = 0;     ///< named Parses answered from a server's cache
  uint64_t evictions = 0;  ///< statements closed to keep a server's cache within its bound
};

struct Context {
  ClientStatements& client;
  ServerStatements& server;
  Exchange& exchange;
  size_t capacity;  ///< statements per server connection (≥ 1)
  char tx_status;   ///< the last ReadyForQuery status seen
  bool idle;        ///< no transaction and nothing owed (no portal can exist): closing is safe
  Counters& counters;
};

/// How the message at hand goes out: first `out` (bytes keel appended), then the message's own
/// bytes from offset `skip` (skip = the whole message: it is replaced or answered by keel).
struct Rewrite {
  size_t skip = 0;
};

/// A whole message that goes to the server as it came whatever the statement tables hold: Execute,
/// Sync, and Parse, Bind or Describe of the unnamed statement (Describe of a portal too). Returns
/// the answer it is owed; nullopt for every other message (named statements, Close, Query ...),
/// which rewrite_client_message() judges. `body` = the message after its type and length.
/// (Most of the traffic: the reader asks this first, without building a Context.)
inline std::optional<Expect> passes_as_is(char type, std::string_view body) {
  switch (type) {
    case 'E': return Expect::execute;
    case 'S': return Expect::sync;
    case 'P':
      if (!body.empty() && body[0] == '\0') return Expect::parse;
      return std::nullopt;
    case 'B': {  // portal name, then statement name
      size_t pos = 0;
      auto stmt = protocol::read_cstr(body, pos) ? protocol::read_cstr(body, pos) : std::nullopt;
      if (stmt && stmt->empty()) return Expect::bind;
      return std::nullopt;
    }
    case 'D':
      if (body.size() >= 2 && (body[0] == 'P' || (body[0] == 'S' && body[1] == '\0'))) return Expect::describe;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

/// msg = the message (type, length, body) as far as it is buffered; length = its length field.
/// Bind may be partial (a large one streamed): it needs its portal and statement names in msg;
/// `need_more` is set when they are not there yet. A partial Parse, Describe or Close goes as it
/// came (a Parse with a name then creates that name on the server: the caller pins the client).
Rewrite rewrite_client_message(char type, std::string_view msg, uint32_t length, Context& ctx, std::string& out,
                               bool& need_more);

/// A simple Query that is exactly `DEALLOCATE name` of a statement the client prepared with the
/// protocol: answered as PostgreSQL would, and the statement forgotten. False: not such a name.
bool rewrite_deallocate(std::string_view name, Context& ctx, std::string& out);

/// Before the reader's bytes go out: when everything owed is keel's own answers, add a nudge so
/// the server's response makes the pump send them.
void nudge_if_needed(Context& ctx, std::string& out);

/// An error keel answers in the middle of an extended-query exchange, sent as a stand-in so that
/// it comes in order and the server skips to Sync as it would for its own error.
void stand_in_error(const PgError& e, Exchange& ex, std::string& out);

}  // namespace keel::prepared
