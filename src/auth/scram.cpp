#include "auth/scram.hpp"

#include <charconv>
#include <map>
#include <mutex>

namespace keel::auth {

namespace {

Digest xor_digest(const Digest& a, const Digest& b) {
  Digest r;
  for (size_t i = 0; i < r.size(); ++i) r[i] = a[i] ^ b[i];
  return r;
}

bool to_digest(std::string_view raw, Digest& out) {
  if (raw.size() != out.size()) return false;
  std::copy(raw.begin(), raw.end(), out.begin());
  return true;
}

/// Splits "a=..,b=..," attributes; returns the value of `key` or nullopt.
std::optional<std::string_view> attr(std::string_view msg, char key) {
  size_t pos = 0;
  while (pos < msg.size()) {
    size_t comma = msg.find(',', pos);
    auto part = msg.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (part.size() >= 2 && part[0] == key && part[1] == '=') return part.substr(2);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return std::nullopt;
}

bool printable_nonce(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return true;
}

PgError malformed(std::string_view what) {
  return PgError::fatal(sqlstate::protocol_violation, "malformed SCRAM message: " + std::string(what));
}

/// ",s=<salt>,i=<iterations>" (ScramVerifier::first_tail).
std::string make_first_tail(std::string_view salt, int iterations) {
  return ",s=" + base64_encode(salt) + ",i=" + std::to_string(iterations);
}

Digest cached_salted_password(std::string_view password, std::string_view salt, int iterations) {
  static std::mutex mu;
  static std::map<std::string, Digest> cache;
  std::string key = std::string(as_view(sha256(password))) + std::string(salt) + std::to_string(iterations);
  {
    std::lock_guard lock(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  Digest d = pbkdf2_sha256(password, salt, iterations);
  std::lock_guard lock(mu);
  if (cache.size() > 4096) cache.clear();
  cache.emplace(std::move(key), d);
  return d;
}

}  // namespace

std::optional<ScramVerifier> ScramVerifier::parse(std::string_view text) {
  constexpr std::string_view prefix = "SCRAM-SHA-256$";
  if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
  text.remove_prefix(prefix.size());
  size_t colon = text.find(':'), dollar = text.find('$');
  if (colon == std::string_view::npos || dollar == std::string_view::npos || colon > dollar) return std::nullopt;
  ScramVerifier v;
  auto it = text.substr(0, colon);
  auto [ptr, ec] = std::from_chars(it.data(), it.data() + it.size(), v.iterations);
  if (ec != std::errc() || ptr != it.data() + it.size() || v.iterations < 1) return std::nullopt;
  auto salt = base64_decode(text.substr(colon + 1, dollar - colon - 1));
  if (!salt || salt->empty()) return std::nullopt;
  v.salt = *salt;
  auto keys = text.substr(dollar + 1);
  size_t c2 = keys.find(':');
  if (c2 == std::string_view::npos) return std::nullopt;
  auto sk = base64_decode(keys.substr(0, c2));
  auto svk = base64_decode(keys.substr(c2 + 1));
  if (!sk || !svk || !to_digest(*sk, v.stored_key) || !to_digest(*svk, v.server_key)) return std::nullopt;
  v.first_tail = make_first_tail(v.salt, v.iterations);
  return v;
}

ScramVerifier ScramVerifier::from_password(std::string_view password, std::string_view salt, int iterations) {
  ScramVerifier v;
  v.iterations = iterations;
  v.salt = std::string(salt);
  Digest salted = pbkdf2_sha256(password, salt, iterations);
  v.stored_key = sha256(as_view(hmac_sha256(salted, "Client Key")));
  v.server_key = hmac_sha256(salted, "Server Key");
  v.first_tail = make_first_tail(v.salt, v.iterations);
  return v;
}

std::string ScramVerifier::to_string() const {
  return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" + base64_encode(salt) + "$" +
         base64_encode(as_view(stored_key)) + ":" + base64_encode(as_view(server_key));
}

ScramServer::ScramServer(const ScramVerifier* verifier, std::string_view user, std::string_view mock_seed,
                         std::string server_nonce)
    : v_(verifier ? verifier : &mock_), user_(user), nonce_(std::move(server_nonce)) {
  if (!verifier) {
    // A stable fake salt per user, so probing cannot tell unknown users from known ones.
    Digest seed = hmac_sha256(mock_seed, user);
    mock_.iterations = 4096;
    mock_.salt = std::string(as_view(seed).substr(0, 16));
    mock_.stored_key = sha256(as_view(seed));
    mock_.server_key = seed;
    mock_.first_tail = make_first_tail(mock_.salt, mock_.iterations);
  }
  if (nonce_.empty()) nonce_ = base64_encode(random_bytes(18));
}

Result<std::string> ScramServer::handle_client_first(std::string_view msg) {
  // gs2-header: "n,," or "y,," (no channel binding without TLS); "p=..." is refused.
  if (msg.size() < 3) return malformed("client-first too short");
  if (msg[0] == 'p')
    return PgError::fatal(sqlstate::protocol_violation, "channel binding is not supported without TLS");
  if ((msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',') return malformed("bad gs2 header");
  size_t second = msg.find(',', 2);
  if (second == std::string_view::npos) return malformed("bad gs2 header");
  gs2_header_ = std::string(msg.substr(0, second + 1));
  client_first_bare_ = std::string(msg.substr(second + 1));
  auto r = attr(client_first_bare_, 'r');
  if (!r || !printable_nonce(*r)) return malformed("bad client nonce");
  if (client_first_bare_.rfind("m=", 0) == 0) return malformed("mandatory extensions unsupported");
  nonce_.insert(0, *r);
  server_first_.reserve(2 + nonce_.size() + v_->first_tail.size());
  server_first_.append("r=").append(nonce_).append(v_->first_tail);
  return server_first_;
}

Result<std::string> ScramServer::handle_client_final(std::string_view msg) {
  auto failed = [&] {
    return PgError::fatal(sqlstate::invalid_password, "password authentication failed for user \"" + user_ + "\"");
  };
  size_t p = msg.rfind(",p=");
  if (p == std::string_view::npos) return malformed("missing proof");
  auto without_proof = msg.substr(0, p);
  auto c = attr(without_proof, 'c');
  auto r = attr(without_proof, 'r');
  if (!c || !r) return malformed("missing attributes");
  if (*c != base64_encode(gs2_header_)) return malformed("channel binding mismatch");
  if (*r != nonce_) return malformed("nonce mismatch");
  auto proof_raw = base64_decode(msg.substr(p + 3));
  Digest proof;
  if (!proof_raw || !to_digest(*proof_raw, proof)) return malformed("bad proof");
  std::string auth_message;
  auth_message.reserve(client_first_bare_.size() + server_first_.size() + without_proof.size() + 2);
  auth_message.append(client_first_bare_).append(",").append(server_first_).append(",").append(without_proof);
  Digest client_signature = hmac_sha256(v_->stored_key, auth_message);
  Digest client_key = xor_digest(proof, client_signature);
  bool good = constant_time_equal(as_view(sha256(as_view(client_key))), as_view(v_->stored_key));
  if (!good || v_ == &mock_) return failed();
  return "v=" + base64_encode(as_view(hmac_sha256(v_->server_key, auth_message)));
}

ScramClient::ScramClient(std::string password, std::string client_nonce)
    : password_(std::move(password)), nonce_(std::move(client_nonce)) {
  if (nonce_.empty()) nonce_ = base64_encode(random_bytes(18));
}

std::string ScramClient::client_first() {
  client_first_bare_ = "n=,r=" + nonce_;
  return "n,," + client_first_bare_;
}

Result<std::string> ScramClient::handle_server_first(std::string_view msg) {
  auto bad = [](std::string_view w) {
    return PgError::error(sqlstate::protocol_violation, "malformed SCRAM message from server: " + std::string(w));
  };
  auto r = attr(msg, 'r'), s = attr(msg, 's'), i = attr(msg, 'i');
  if (!r || !s || !i) return bad("missing attributes");
  if (r->substr(0, nonce_.size()) != nonce_ || r->size() <= nonce_.size()) return bad("nonce mismatch");
  auto salt = base64_decode(*s);
  int iterations = 0;
  auto [ptr, ec] = std::from_chars(i->data(), i->data() + i->size(), iterations);
  if (!salt || ec != std::errc() || iterations < 1 || iterations > 10'000'000) return bad("bad salt or iterations");
  Digest salted = cached_salted_password(password_, *salt, iterations);
  Digest client_key = hmac_sha256(salted, "Client Key");
  Digest stored_key = sha256(as_view(client_key));
  server_key_ = hmac_sha256(salted, "Server Key");
  std::string without_proof = "c=biws,r=" + std::string(*r);
  auth_message_ = client_first_bare_ + "," + std::string(msg) + "," + without_proof;
  Digest proof = xor_digest(client_key, hmac_sha256(stored_key, auth_message_));
  return without_proof + ",p=" + base64_encode(as_view(proof));
}

Status ScramClient::handle_server_final(std::string_view msg) {
  auto v = attr(msg, 'v');
  std::string expected = base64_encode(as_view(hmac_sha256(server_key_, auth_message_)));
  if (!v || !constant_time_equal(*v, expected))
    return PgError::error(sqlstate::invalid_authorization, "server's SCRAM signature is invalid");
  return Ok{};
}

}  // namespace keel::auth
