// The current Policy, swapped whole on reload. Each connection takes a reference
// when it starts and keeps that Policy until it closes. The state store lives here
// too: it outlives reloads and is reopened only when 'state' changes.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "backstop/policy/policy.hpp"
#include "backstop/state/store.hpp"

namespace backstop::milter {

class PolicyHolder {
  public:
    std::shared_ptr<const Policy> get() const;
    void set(std::shared_ptr<const Policy> policy);

    std::shared_ptr<StateStore> state() const;
    void set_state(std::shared_ptr<StateStore> state, std::string spec);
    std::string state_spec() const;

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const Policy> policy_;
    std::shared_ptr<StateStore> state_;
    std::string state_spec_;
};

// The daemon's one holder (libmilter callbacks have no user pointer to carry it).
PolicyHolder& current_policy();

}  // namespace backstop::milter
