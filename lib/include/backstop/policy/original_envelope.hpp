// [srs] original-envelope: SRS forwarding and reversal with postsrsd 2's alias
// store for senders too long to embed (envelope/srs_alias.hpp). The Session and
// the socketmap's forward and reverse maps both decide through these calls.
#pragma once

#include <string>
#include <string_view>

#include "backstop/base/clock.hpp"
#include "backstop/base/result.hpp"
#include "backstop/envelope/srs.hpp"
#include "backstop/policy/policy.hpp"
#include "backstop/state/store.hpp"

namespace backstop {

// What forwarding makes of a sender.
struct SrsPlan {
    std::string address;  // the sender as it leaves
    SrsForwardKind kind = SrsForwardKind::srs0;
    std::string alias;  // "ALIAS@1" to store before address is used; empty: embedded
};

// The SRS address of a sender under original-envelope; nothing is written. Needs
// policy.srs(). A sender too long to embed fails with SrsErrc::too_long only when
// original-envelope is embedded.
Result<SrsPlan, SrsError> plan_srs_forward(const Policy& policy, std::string_view sender,
                                           UnixTime now);

// Stores the plan's alias -> sender for [srs] max-age days; nothing to do without
// an alias. Fails when the store does (or there is none): apply on-state-error.
Result<bool, Failure> store_srs_alias(const Policy& policy, StateStore* state, const SrsPlan& plan,
                                      std::string_view sender, UnixTime now);

enum class SrsReverseStatus {
    ok,             // address: the real sender
    invalid,        // not a valid SRS address of ours (error says why)
    unknown_alias,  // valid, but its alias has no record (expired, or never ours)
    state_error,    // the store failed: apply on-state-error
};

struct SrsReversal {
    SrsReverseStatus status = SrsReverseStatus::invalid;
    std::string address;
    SrsErrc error = SrsErrc::not_srs;  // invalid
    std::string why;                   // not ok: for the log
    bool via_alias = false;            // ok: found through an alias
};

// Reverses an SRS address at our SRS domain; an alias is looked up in state.
SrsReversal reverse_srs(const Policy& policy, StateStore* state, std::string_view address,
                        UnixTime now);

}  // namespace backstop
