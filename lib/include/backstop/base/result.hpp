// Result<T, E>: a value or an error, for failures the user can cause (bad input,
// bad key files). Exceptions are kept for programming errors and start-up.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace backstop {

// A plain error: a code from the caller's enum and a message a mail admin can act on.
template <class Code>
struct Error {
    Code code;
    std::string message;
};

// An error that is only a message, for operations with one way to fail.
struct Failure {
    std::string message;
};

template <class T, class E>
class Result {
  public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    const T& value() const& {
        assert(ok());
        return std::get<0>(v_);
    }
    T& value() & {
        assert(ok());
        return std::get<0>(v_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(v_));
    }
    const T& operator*() const& { return value(); }
    const T* operator->() const { return &value(); }

    const E& error() const& {
        assert(!ok());
        return std::get<1>(v_);
    }

  private:
    std::variant<T, E> v_;
};

}  // namespace backstop
