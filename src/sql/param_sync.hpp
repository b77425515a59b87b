#pragma once
// Which session parameters keel carries for each client across server connections, and the SQL
// that brings a server connection to a client's values. Pure: no sockets, no clock.
//
// A client's wanted values come from its startup packet (including `options=-c name=value`) and
// from ParameterStatus messages the server sends while that client is attached (its own SET of a
// reportable parameter). A server connection remembers the values keel or a client set on it;
// anything it does not remember is at the server's default.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel::sql {

using ParamList = std::vector<std::pair<std::string, std::string>>;

/// The canonical name if `name` (any case) is a parameter keel carries, else nullopt.
std::optional<std::string_view> tracked_param(std::string_view name);
/// True for the tracked parameters the server reports with ParameterStatus (GUC_REPORT).
bool is_reportable(std::string_view canonical);

/// Parses libpq's `options` startup value ("-c a=b -c c=d", "--a=b", backslash escapes spaces).
/// Returns the pairs found; false when the string has something else in it.
bool parse_options(std::string_view options, ParamList& out);

const std::string* find_param(const ParamList& l, std::string_view name);
void set_param(ParamList& l, std::string_view name, std::string_view value);
void erase_param(ParamList& l, std::string_view name);

/// `v` as an SQL string literal ('...', quotes doubled; standard_conforming_strings).
std::string quote_literal(std::string_view v);

/// True when `name` can be written into SQL as a bare parameter name.
bool is_param_name(std::string_view name);

/// The SQL (one simple query) that makes a server connection whose remembered values are
/// `server` carry exactly the client's `wanted` values, or "" when nothing differs. A value not
/// remembered is the server's default: `defaults` (its login ParameterStatus) where known.
/// Updates `server` to what it will be once the query has run.
std::string sync_sql(const ParamList& wanted, ParamList& server, const ParamList* defaults);

}  // namespace keel::sql
