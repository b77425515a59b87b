#include "prepared/statements.hpp"

namespace keel::prepared {

Statement::Statement(std::string_view b) : body(b), hash(std::hash<std::string_view>{}(b)) {}

const StatementPtr* ClientStatements::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

void ClientStatements::set(std::string_view name, StatementPtr def) {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) it->second = std::move(def);
  else by_name_.emplace(std::string(name), std::move(def));
}

void ClientStatements::erase(std::string_view name) {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) by_name_.erase(it);
}

const std::string* ServerStatements::find(const Statement& def) {
  auto it = index_.find(Key{&def});
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->name;
}

const std::string& ServerStatements::add(StatementPtr def, size_t capacity, std::vector<std::string>& evicted) {
  if (capacity == 0) capacity = 1;
  if (auto it = index_.find(Key{def.get()}); it != index_.end()) return it->second->name;  // already here
  while (lru_.size() >= capacity) {
    Entry& old = lru_.back();
    index_.erase(Key{old.def.get()});
    evicted.push_back(std::move(old.name));
    lru_.pop_back();
  }
  lru_.push_front(Entry{std::move(def), new_name()});
  index_[Key{lru_.front().def.get()}] = lru_.begin();
  return lru_.front().name;
}

void ServerStatements::erase(const Statement& def, std::string_view name) {
  auto it = index_.find(Key{&def});
  if (it == index_.end() || it->second->name != name) return;
  lru_.erase(it->second);
  index_.erase(it);
}

void ServerStatements::clear() {
  index_.clear();
  lru_.clear();
  orphans.clear();
}

}  // namespace keel::prepared
