// The state store as the configuration sets it up: where it lives (state), how long
// hard-bounce records last, and for Redis the password and TLS files, read here under
// the key-file rules. The milter and `backstop bounces --config` both open it so.
#pragma once

#include <memory>
#include <string>

#include "backstop/base/result.hpp"
#include "backstop/policy/config.hpp"
#include "backstop/state/store.hpp"

namespace backstop {

// Reads redis-password-file and redis-key-file (refused when missing, empty, or
// readable by group or others; the error names the file, never its contents).
Result<StateOptions, Failure> state_options(const Config& c);

// What a reload compares: a change reopens the store. It carries a digest of the
// password, so that a new password in the same file is picked up, not the password.
std::string state_identity(const Config& c, const StateOptions& o);

// state_options() and open_state() in one.
Result<std::shared_ptr<StateStore>, Failure> open_configured_state(const Config& c);

}  // namespace backstop
