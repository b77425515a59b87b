#pragma once
// Named prepared statements in transaction mode: what each client has prepared (by its own
// names) and what each server connection has prepared (by keel's names, keyed by definition).
// Pure data structures; one owner each (a session, a server connection), so not thread-safe.
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace keel::prepared {

/// What a named Parse defines: the query text and the parameter types, kept as the Parse body
/// after the statement name (query NUL, int16 count, int32 type OIDs). Two Parses define the same
/// statement when these bytes are equal.
struct Statement {
  explicit Statement(std::string_view parse_body_after_name);
  std::string body;
  size_t hash;
  bool operator==(const Statement& o) const { return hash == o.hash && body == o.body; }
};
using StatementPtr = std::shared_ptr<const Statement>;

/// One client's statements, by the names it gave them.
class ClientStatements {
 public:
  /// The statement the client prepared under `name`, or nullptr.
  const StatementPtr* find(std::string_view name) const;
  void set(std::string_view name, StatementPtr def);
  void erase(std::string_view name);
  void clear() { by_name_.clear(); }
  size_t size() const { return by_name_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, StatementPtr, Hash, std::equal_to<>> by_name_;
};

/// The statements prepared on one server connection, each under a name unique on that
/// connection ("_keel_N"), looked up by definition, least recently used first out.
class ServerStatements {
 public:
  /// The server-side name of `def`, marked most recently used; nullptr if not prepared here.
  const std::string* find(const Statement& def);
  /// Records `def` as prepared under a new name and returns that name. When more than
  /// `capacity` (≥ 1) statements would be held, the least recently used are dropped and their
  /// names appended to `evicted`: the caller closes them on the server.
  const std::string& add(StatementPtr def, size_t capacity, std::vector<std::string>& evicted);
  /// Forgets `def` if it is recorded under `name` (its preparation failed or was undone).
  void erase(const Statement& def, std::string_view name);
  /// Everything was deallocated on the server (DISCARD ALL, DEALLOCATE ALL).
  void clear();
  size_t size() const { return lru_.size(); }
  /// A fresh name, never given before on this connection.
  std::string new_name() { return "_keel_" + std::to_string(++next_); }

  /// Names prepared on the server that no entry refers to any more (evicted, or a Close the
  /// server skipped): closed at the next safe point.
  std::vector<std::string> orphans;

 private:
  struct Entry {
    StatementPtr def;
    std::string name;
  };
  struct Key {
    const Statement* def;
    bool operator==(const Key& o) const { return *def == *o.def; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept { return k.def->hash; }
  };
  std::list<Entry> lru_;  ///< most recently used at the front
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index_;
  uint64_t next_ = 0;
};

}  // namespace keel::prepared
