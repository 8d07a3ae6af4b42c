#include "policy_holder.hpp"

namespace backstop::milter {

std::shared_ptr<const Policy> PolicyHolder::get() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return policy_;
}

void PolicyHolder::set(std::shared_ptr<const Policy> policy) {
    std::lock_guard<std::mutex> lock(mutex_);
    policy_ = std::move(policy);
}

std::shared_ptr<StateStore> PolicyHolder::state() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_;
}

void PolicyHolder::set_state(std::shared_ptr<StateStore> state, std::string spec) {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = std::move(state);
    state_spec_ = std::move(spec);
}

std::string PolicyHolder::state_spec() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_spec_;
}

PolicyHolder& current_policy() {
    static PolicyHolder holder;
    return holder;
}

}  // namespace backstop::milter
