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

PolicyHolder& current_policy() {
    static PolicyHolder holder;
    return holder;
}

}  // namespace backstop::milter
