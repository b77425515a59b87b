#include "auth/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>
#include <stdexcept>

namespace keel::auth {

namespace {
// OpenSSL 3 looks an algorithm up (locks, a hash table) and allocates a context on every one-shot
// call (SHA256(), HMAC()). SHA-256 fetched once per process, with one digest context per thread
// re-initialised per call (HMAC too is built on it), a login's few digests cost only the hashing.
EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct ThreadCtx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~ThreadCtx() { EVP_MD_CTX_free(md); }
};

ThreadCtx& thread_ctx() {
  thread_local ThreadCtx c;
  return c;
}
}  // namespace

Digest sha256(std::string_view data) {
  Digest d;
  auto& c = thread_ctx();
  unsigned int len = 0;
  if (sha256_md() && c.md && EVP_DigestInit_ex2(c.md, sha256_md(), nullptr) == 1 &&
      EVP_DigestUpdate(c.md, data.data(), data.size()) == 1 && EVP_DigestFinal_ex(c.md, d.data(), &len) == 1)
    return d;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return d;
}

Digest hmac_sha256(std::string_view key, std::string_view data) {
  // HMAC (RFC 2104) as two digests on the thread's context: H((K ^ opad) || H((K ^ ipad) || data)).
  // (EVP_MAC_init sets up and copies three digest contexts on every call.)
  constexpr size_t kBlock = 64;
  Digest d;
  auto& c = thread_ctx();
  if (sha256_md() && c.md) {
    unsigned char k[kBlock] = {};
    if (key.size() > kBlock) {
      Digest kh = sha256(key);
      std::memcpy(k, kh.data(), kh.size());
      OPENSSL_cleanse(kh.data(), kh.size());
    } else {
      std::memcpy(k, key.data(), key.size());
    }
    unsigned char pad[kBlock];
    for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x36;
    Digest inner;
    unsigned int len = 0;
    bool ok = EVP_DigestInit_ex2(c.md, sha256_md(), nullptr) == 1 && EVP_DigestUpdate(c.md, pad, kBlock) == 1 &&
              EVP_DigestUpdate(c.md, data.data(), data.size()) == 1 &&
              EVP_DigestFinal_ex(c.md, inner.data(), &len) == 1;
    if (ok) {
      for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x5c;
      ok = EVP_DigestInit_ex2(c.md, sha256_md(), nullptr) == 1 && EVP_DigestUpdate(c.md, pad, kBlock) == 1 &&
           EVP_DigestUpdate(c.md, inner.data(), inner.size()) == 1 && EVP_DigestFinal_ex(c.md, d.data(), &len) == 1;
    }
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner.data(), inner.size());
    if (ok) return d;
  }
  unsigned int ulen = 0;
  HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), d.data(), &ulen);
  return d;
}

Digest hmac_sha256(const Digest& key, std::string_view data) { return hmac_sha256(as_view(key), data); }

Digest pbkdf2_sha256(std::string_view password, std::string_view salt, int iterations) {
  Digest d;
  PKCS5_PBKDF2_HMAC(password.data(), int(password.size()), reinterpret_cast<const unsigned char*>(salt.data()),
                    int(salt.size()), iterations, EVP_sha256(), int(d.size()), d.data());
  return d;
}

std::string md5_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

std::string base64_encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), int(raw.size()));
  out.resize(size_t(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view b64) {
  if (b64.size() % 4 != 0) return std::nullopt;
  std::string out(3 * (b64.size() / 4), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), int(b64.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (!b64.empty() && b64.back() == '=') ++pad;
  if (b64.size() > 1 && b64[b64.size() - 2] == '=') ++pad;
  out.resize(size_t(n) - pad);
  return out;
}

std::string random_bytes(size_t n) {
  // A login takes a nonce and a cancel key: served from a per-thread block of the CSPRNG's output
  // (each byte handed out once), so RAND_bytes' fixed cost is paid once per block, not per call.
  struct Block {
    unsigned char b[512];
    size_t pos = sizeof b;
    ~Block() { OPENSSL_cleanse(b, sizeof b); }
  };
  thread_local Block blk;
  std::string out(n, '\0');
  if (n > sizeof blk.b / 4) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), int(n)) != 1)
      throw std::runtime_error("RAND_bytes failed");
    return out;
  }
  if (sizeof blk.b - blk.pos < n) {
    if (RAND_bytes(blk.b, int(sizeof blk.b)) != 1) throw std::runtime_error("RAND_bytes failed");
    blk.pos = 0;
  }
  std::memcpy(out.data(), blk.b + blk.pos, n);
  OPENSSL_cleanse(blk.b + blk.pos, n);
  blk.pos += n;
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace keel::auth
