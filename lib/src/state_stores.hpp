// The store implementations behind open_state().
#pragma once

#include <memory>
#include <string>

#include "backstop/state.hpp"

namespace backstop {

std::shared_ptr<StateStore> make_memory_store();
Result<std::shared_ptr<StateStore>, Failure> open_sqlite_store(const std::string& path);
// spec: redis://host[:port][/db]; timeout_ms bounds every call, connecting included.
Result<std::shared_ptr<StateStore>, Failure> open_redis_store(const std::string& spec,
                                                              int timeout_ms);

}  // namespace backstop
