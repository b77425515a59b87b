#pragma once
// Result<T>: a value or a PgError. Expected failures travel as values, never as exceptions.
#include <utility>
#include <variant>

#include "core/pg_error.hpp"

namespace keel {

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(PgError err) : v_(std::move(err)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  T& operator*() { return std::get<0>(v_); }
  const PgError& error() const { return std::get<1>(v_); }
  PgError take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, PgError> v_;
};

struct Ok {};
using Status = Result<Ok>;

}  // namespace keel
