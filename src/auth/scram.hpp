#pragma once
// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it (sasl-authentication):
// the user name inside the exchange is ignored, no channel binding without TLS.
#include <optional>
#include <string>
#include <string_view>

#include "auth/crypto.hpp"
#include "core/result.hpp"

namespace keel::auth {

/// What a server stores for a user: "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>".
struct ScramVerifier {
  int iterations = 4096;
  std::string salt;  ///< raw bytes
  Digest stored_key{};
  Digest server_key{};
  /// ",s=<salt in base64>,i=<iterations>": the end of every server-first message, made once.
  std::string first_tail;

  static std::optional<ScramVerifier> parse(std::string_view text);
  static ScramVerifier from_password(std::string_view password, std::string_view salt, int iterations = 4096);
  std::string to_string() const;
};

/// Server side of one exchange (keel authenticating a client). Not thread-safe; one per login.
class ScramServer {
 public:
  /// `verifier` null = unknown user: the exchange runs to the end against a mock verifier
  /// derived from `mock_seed`, and fails like a wrong password. A given verifier must outlive
  /// the exchange (it is the configuration's, held by the session).
  ScramServer(const ScramVerifier* verifier, std::string_view user, std::string_view mock_seed,
              std::string server_nonce = {});
  ScramServer(const ScramServer&) = delete;
  ScramServer& operator=(const ScramServer&) = delete;

  /// client-first-message → server-first-message, or 08P01/28000 on malformed input.
  Result<std::string> handle_client_first(std::string_view msg);
  /// client-final-message → server-final-message ("v=..."), or 28P01 when the proof is wrong.
  Result<std::string> handle_client_final(std::string_view msg);

 private:
  ScramVerifier mock_;      ///< an unknown user's
  const ScramVerifier* v_;  ///< the verifier in use: the given one, or &mock_ for an unknown user
  std::string user_;
  std::string nonce_;
  std::string client_first_bare_, server_first_, gs2_header_;
};

/// Client side of one exchange (keel logging in to a server).
class ScramClient {
 public:
  /// The SaltedPassword is cached process-wide per (password, salt, iterations), so the PBKDF2
  /// work is done once, not on every server login.
  ScramClient(std::string password, std::string client_nonce = {});

  std::string client_first();
  /// server-first → client-final, or an error when the server's message is malformed.
  Result<std::string> handle_server_first(std::string_view msg);
  /// Checks the server's signature.
  Status handle_server_final(std::string_view msg);

 private:
  std::string password_, nonce_, client_first_bare_, auth_message_;
  Digest server_key_{};
};

}  // namespace keel::auth
