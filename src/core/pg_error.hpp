#pragma once
// PostgreSQL errors as values: every expected failure carries its SQLSTATE.
#include <string>
#include <string_view>

namespace keel {

/// SQLSTATE codes keel itself emits (PostgreSQL Appendix A).
namespace sqlstate {
inline constexpr std::string_view protocol_violation = "08P01";
inline constexpr std::string_view connection_failure = "08006";
inline constexpr std::string_view connection_exception = "08000";
inline constexpr std::string_view invalid_password = "28P01";
inline constexpr std::string_view invalid_authorization = "28000";
inline constexpr std::string_view invalid_catalog_name = "3D000";
inline constexpr std::string_view too_many_connections = "53300";
inline constexpr std::string_view feature_not_supported = "0A000";
inline constexpr std::string_view admin_shutdown = "57P01";
inline constexpr std::string_view idle_session_timeout = "57P05";
inline constexpr std::string_view query_canceled = "57014";
inline constexpr std::string_view syntax_error = "42601";
inline constexpr std::string_view duplicate_prepared_statement = "42P05";
inline constexpr std::string_view invalid_sql_statement_name = "26000";
inline constexpr std::string_view internal_error = "XX000";
inline constexpr std::string_view read_only_transaction = "25006";
}  // namespace sqlstate

enum class Severity { error, fatal };

/// An error as PostgreSQL reports it. FATAL if and only if the connection closes after it.
struct PgError {
  std::string sqlstate;
  Severity severity = Severity::error;
  std::string message;
  std::string detail;
  std::string hint;

  static PgError fatal(std::string_view code, std::string msg) {
    return PgError{std::string(code), Severity::fatal, std::move(msg), {}, {}};
  }
  static PgError error(std::string_view code, std::string msg) {
    return PgError{std::string(code), Severity::error, std::move(msg), {}, {}};
  }
  bool is_fatal() const { return severity == Severity::fatal; }
};

}  // namespace keel
