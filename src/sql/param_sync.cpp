#include "sql/param_sync.hpp"

#include <array>
#include <cctype>
#include <strings.h>

namespace keel::sql {

namespace {
struct Tracked {
  std::string_view name;
  bool reportable;
};
constexpr std::array<Tracked, 10> kTracked = {{
    {"application_name", true},
    {"client_encoding", true},
    {"DateStyle", true},
    {"TimeZone", true},
    {"IntervalStyle", true},
    {"search_path", false},
    {"statement_timeout", false},
    {"lock_timeout", false},
    {"idle_in_transaction_session_timeout", false},
    {"extra_float_digits", false},
}};

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string quote_literal(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') out += "''";
    else out += c;
  }
  return out + "'";
}

std::optional<std::string_view> tracked_param(std::string_view name) {
  for (auto& t : kTracked)
    if (iequal(t.name, name)) return t.name;
  return std::nullopt;
}

bool is_reportable(std::string_view canonical) {
  for (auto& t : kTracked)
    if (t.name == canonical) return t.reportable;
  return false;
}

bool parse_options(std::string_view s, ParamList& out) {
  // Split on unescaped white space, as the server does (pg_split_opts).
  std::vector<std::string> words;
  std::string cur;
  bool have = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      have = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (have) words.push_back(std::move(cur));
      cur.clear();
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) words.push_back(std::move(cur));
  for (size_t i = 0; i < words.size(); ++i) {
    std::string_view w = words[i], kv;
    if (w == "-c") {
      if (++i >= words.size()) return false;
      kv = words[i];
    } else if (w.substr(0, 2) == "-c") {
      kv = w.substr(2);
    } else if (w.substr(0, 2) == "--") {
      kv = w.substr(2);
    } else {
      return false;
    }
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) return false;
    std::string name(kv.substr(0, eq));
    for (auto& ch : name)
      if (ch == '-') ch = '_';
    out.emplace_back(std::move(name), std::string(kv.substr(eq + 1)));
  }
  return true;
}

const std::string* find_param(const ParamList& l, std::string_view name) {
  for (auto& [k, v] : l)
    if (k == name) return &v;
  return nullptr;
}

void set_param(ParamList& l, std::string_view name, std::string_view value) {
  for (auto& [k, v] : l)
    if (k == name) {
      v = std::string(value);
      return;
    }
  l.emplace_back(std::string(name), std::string(value));
}

void erase_param(ParamList& l, std::string_view name) {
  for (auto it = l.begin(); it != l.end(); ++it)
    if (it->first == name) {
      l.erase(it);
      return;
    }
}

bool is_param_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  return !std::isdigit(static_cast<unsigned char>(name[0]));
}

std::string sync_sql(const ParamList& wanted, ParamList& server, const ParamList* defaults) {
  if (wanted == server) return {};  // the usual case: the connection's last client wanted the same
  std::string sets, resets;
  for (auto& [k, v] : wanted) {
    const std::string* have = find_param(server, k);
    if (!have && defaults) have = find_param(*defaults, k);
    if (have && *have == v) continue;
    sets += sets.empty() ? "SELECT " : ", ";
    sets += "pg_catalog.set_config(" + quote_literal(k) + ", " + quote_literal(v) + ", false)";
    set_param(server, k, v);
  }
  for (size_t i = 0; i < server.size();) {
    if (!find_param(wanted, server[i].first)) {
      resets += "RESET " + server[i].first + "; ";  // names come from the fixed tracked list
      server.erase(server.begin() + long(i));
    } else {
      ++i;
    }
  }
  if (sets.empty()) return resets;
  return sets + "; " + resets;
}

}  // namespace keel::sql
