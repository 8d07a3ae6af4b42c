// The current Policy, swapped whole on reload. Each connection takes a reference
// when it starts and keeps that Policy until it closes.
#pragma once

#include <memory>
#include <mutex>

#include "backstop/policy.hpp"

namespace backstop::milter {

class PolicyHolder {
  public:
    std::shared_ptr<const Policy> get() const;
    void set(std::shared_ptr<const Policy> policy);

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const Policy> policy_;
};

// The daemon's one holder (libmilter callbacks have no user pointer to carry it).
PolicyHolder& current_policy();

}  // namespace backstop::milter
