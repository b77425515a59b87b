#include "sql/session_state.hpp"

#include <pg_query.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <iterator>
#include <optional>
#include <cctype>
#include <nlohmann/json.hpp>
#include <string>

#include "sql/param_sync.hpp"

namespace keel::sql {

namespace {

/// ASCII lower case (SQL keywords are ASCII; no locale lookup on the per-statement path).
inline char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c | 0x20) : c; }

bool word_at(std::string_view s, size_t i, std::string_view w) {
  if (i + w.size() > s.size()) return false;
  for (size_t k = 0; k < w.size(); ++k)
    if (lower(s[i + k]) != w[k]) return false;
  return true;
}

/// Position of the first keyword of the statement starting at i (white space and comments skipped).
size_t statement_start(std::string_view s, size_t i) {
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || (c >= '\t' && c <= '\r') || c == '(') {
      ++i;
    } else if (s.compare(i, 2, "--") == 0) {
      size_t nl = s.find('\n', i);
      i = nl == std::string_view::npos ? s.size() : nl + 1;
    } else if (s.compare(i, 2, "/*") == 0) {
      size_t end = s.find("*/", i + 2);
      i = end == std::string_view::npos ? s.size() : end + 2;
    } else {
      break;
    }
  }
  return i;
}

using json = nlohmann::json;

void walk_functions(const json& j, SessionStateDelta& d) {
  if (j.is_object()) {
    if (auto it = j.find("FuncCall"); it != j.end() && it->contains("funcname")) {
      const auto& names = (*it)["funcname"];
      if (!names.empty()) {
        std::string fn = names.back().value("String", json::object()).value("sval", "");
        if (fn == "pg_advisory_lock" || fn == "pg_advisory_lock_shared" || fn == "pg_try_advisory_lock" ||
            fn == "pg_try_advisory_lock_shared")
          ++d.advisory_locks;
        else if (fn == "pg_advisory_unlock" || fn == "pg_advisory_unlock_shared")
          --d.advisory_locks;
        else if (fn == "pg_advisory_unlock_all")
          d.advisory_unlock_all = true;
        else if (fn == "set_config")
          d.session_set = true;  // may or may not be local: do not guess
      }
    }
    for (auto& [k, v] : j.items()) walk_functions(v, d);
  } else if (j.is_array()) {
    for (auto& v : j) walk_functions(v, d);
  }
}

/// The value of `SET name = <one constant>`, as text.
std::optional<std::string> constant(const json& set_stmt) {
  const json& args = set_stmt.value("args", json::array());
  if (!args.is_array() || args.size() != 1 || !args[0].is_object() || !args[0].contains("A_Const")) return std::nullopt;
  const json& c = args[0]["A_Const"];
  if (auto it = c.find("ival"); it != c.end()) return std::to_string(it->value("ival", 0));
  if (auto it = c.find("fval"); it != c.end()) return it->value("fval", std::string());
  if (auto it = c.find("sval"); it != c.end()) return it->value("sval", std::string());
  if (auto it = c.find("boolval"); it != c.end()) return std::string(it->value("boolval", false) ? "on" : "off");
  return std::nullopt;
}

bool temp_rel(const json& rel) { return rel.is_object() && rel.value("relpersistence", "") == "t"; }

void classify_stmt(const json& stmt, SessionStateDelta& d) {
  if (!stmt.is_object() || stmt.empty()) return;
  auto first = stmt.begin();
  const std::string kind = first.key();
  const json& body = first.value();
  if (kind == "ListenStmt") {
    ++d.listens;
  } else if (kind == "UnlistenStmt") {
    if (body.contains("conditionname")) --d.listens;
    else d.unlisten_all = true;
  } else if (kind == "CreateStmt" || kind == "CreateSeqStmt") {
    if (temp_rel(body.value("relation", json::object())) || temp_rel(body.value("sequence", json::object())))
      d.temp_table = true;
  } else if (kind == "CreateTableAsStmt") {
    if (temp_rel(body.value("into", json::object()).value("rel", json::object()))) d.temp_table = true;
  } else if (kind == "ViewStmt") {
    if (temp_rel(body.value("view", json::object()))) d.temp_table = true;
  } else if (kind == "SelectStmt" && body.contains("intoClause")) {
    if (temp_rel(body["intoClause"].value("rel", json::object()))) d.temp_table = true;
  } else if (kind == "DeclareCursorStmt") {
    constexpr int kCursorOptHold = 0x0020;
    if (body.value("options", 0) & kCursorOptHold) ++d.hold_cursors;
  } else if (kind == "ClosePortalStmt") {
    if (body.contains("portalname")) --d.hold_cursors;
    else d.close_all = true;
  } else if (kind == "PrepareStmt") {
    d.prepared.push_back(body.value("name", ""));
  } else if (kind == "DeallocateStmt") {
    if (body.contains("name")) d.deallocated.push_back(body.value("name", ""));
    else d.deallocate_all = true;
  } else if (kind == "DiscardStmt") {
    std::string t = body.value("target", "");
    if (t == "DISCARD_ALL") d.discard_all = true;
    else if (t == "DISCARD_TEMP") d.discard_temp = true;
  } else if (kind == "VariableSetStmt") {
    std::string k = body.value("kind", ""), name = body.value("name", "");
    if (k == "VAR_RESET_ALL") {
      d.reset_all = true;
    } else if (!body.value("is_local", false) && name != "TRANSACTION") {
      // Reportable parameters travel with the client (their ParameterStatus says the value);
      // other tracked ones are carried when their value is one constant (search_path is a list
      // of identifiers: pinned).
      auto carried = tracked_param(name);
      if (carried && (k == "VAR_SET_DEFAULT" || k == "VAR_RESET")) {
        d.carried_param = std::string(*carried);  // back to the client's startup value
        d.param_reset = true;
        d.reset_tag = k == "VAR_RESET";
      } else if (!carried || is_reportable(*carried)) {
        if (!carried) d.session_set = true;
      } else if (k == "VAR_SET_DEFAULT" || k == "VAR_RESET") {
        d.carried_param = std::string(*carried);
        d.param_reset = true;
      } else if (auto v = constant(body); v && k == "VAR_SET_VALUE" && *carried != "search_path") {
        d.carried_param = std::string(*carried);
        d.carried_value = *v;
      } else {
        d.session_set = true;
      }
    }
  }
  walk_functions(body, d);
}

}  // namespace

namespace {
// Any of these anywhere (a case-insensitive substring: a superset is fine, classify decides).
constexpr std::string_view kAnywhere[] = {"listen", "advisory", "temp", "hold", "prepare",
                                          "deallocate", "discard", "set_config"};
/// Where a keyword may start: `first` maps a byte to 1 + its row when some keyword starts with
/// that letter (either case), else 0; a row maps the next byte to the keywords (bit k:
/// kAnywhere[k]) that start with those two letters. Most bytes of ordinary SQL cost one lookup.
struct KeywordStarts {
  uint8_t first[256] = {};
  uint8_t second[8][256] = {};
  constexpr KeywordStarts() {
    uint8_t rows = 0;
    for (size_t k = 0; k < std::size(kAnywhere); ++k) {
      auto both = [](uint8_t c, auto set) {
        set(c);
        if (c >= 'a' && c <= 'z') set(uint8_t(c - 32));
      };
      uint8_t c0 = uint8_t(kAnywhere[k][0]);
      if (!first[c0]) {
        ++rows;
        both(c0, [&](uint8_t c) { first[c] = rows; });
      }
      uint8_t row = uint8_t(first[c0] - 1);
      both(uint8_t(kAnywhere[k][1]), [&](uint8_t c) { second[row][c] |= uint8_t(1u << k); });
    }
  }
};
static_assert(std::size(kAnywhere) <= 8);
constexpr KeywordStarts kStarts;
}  // namespace

bool may_touch_session_state(std::string_view s) noexcept {
  // One pass: a keyword is compared only where its first two letters are (rare in ordinary
  // SQL). Every keyword is longer than two letters.
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    uint8_t row = kStarts.first[uint8_t(s[i])];
    if (row == 0) [[likely]] continue;
    for (unsigned m = kStarts.second[row - 1][uint8_t(s[i + 1])]; m != 0; m &= m - 1)
      if (word_at(s, i, kAnywhere[std::countr_zero(m)])) return true;
  }
  // SET / RESET / CLOSE only as a statement's first word (UPDATE ... SET is common and harmless).
  for (size_t i = 0;;) {
    size_t k = statement_start(s, i);
    if (word_at(s, k, "set") || word_at(s, k, "reset") || word_at(s, k, "close")) return true;
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos) break;
    i = semi + 1;
  }
  return false;
}

bool StatementFilter::may_touch(std::string_view sql) {
  if (sql.size() > kMaxText) return may_touch_session_state(sql);
  uint64_t h = XXH3_64bits(sql.data(), sql.size());
  Slot& slot = slots_[h % kSlots];
  if (slot.hash == h && slot.text == sql) return false;
  if (may_touch_session_state(sql)) return true;
  slot.hash = h;
  slot.text.assign(sql);
  return false;
}

SessionStateDelta classify_session_state(std::string_view sql) {
  SessionStateDelta d;
  std::string text(sql);
  PgQueryParseResult r = pg_query_parse(text.c_str());
  if (!r.error && r.parse_tree) {
    auto tree = json::parse(r.parse_tree, nullptr, false);
    if (tree.is_object() && tree.contains("stmts"))
      for (auto& s : tree["stmts"]) {
        ++d.statements;
        classify_stmt(s.value("stmt", json::object()), d);
      }
  }
  pg_query_free_parse_result(r);
  return d;
}

void SessionPins::apply(const SessionStateDelta& d) {
  listens = d.unlisten_all || d.discard_all ? 0 : std::max(0, listens + d.listens);
  advisory_locks = d.advisory_unlock_all || d.discard_all ? 0 : std::max(0, advisory_locks + d.advisory_locks);
  hold_cursors = d.close_all || d.discard_all ? 0 : std::max(0, hold_cursors + d.hold_cursors);
  if (d.deallocate_all || d.discard_all) statements.clear();
  for (auto& n : d.deallocated) closed(n);
  for (auto& n : d.prepared) prepared(n);
  if (d.discard_all || d.discard_temp) temp_tables = false;
  if (d.temp_table) temp_tables = true;
  if (d.discard_all || d.reset_all) session_set = false;
  if (d.session_set) session_set = true;
}

void SessionPins::prepared(std::string_view name) {
  if (std::find(statements.begin(), statements.end(), name) == statements.end()) statements.emplace_back(name);
}

void SessionPins::closed(std::string_view name) {
  auto it = std::find(statements.begin(), statements.end(), name);
  if (it != statements.end()) statements.erase(it);
}

}  // namespace keel::sql
