// The store implementations behind open_state().
#pragma once

#include <memory>
#include <string>

#include "backstop/state.hpp"

namespace backstop {

std::shared_ptr<StateStore> make_memory_store();
Result<std::shared_ptr<StateStore>, Failure> open_sqlite_store(const std::string& path);

}  // namespace backstop
