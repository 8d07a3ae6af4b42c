// Shared state: sliding-window counters (bounce storms), hard-bounce records and
// the aliases of forwarded senders too long to embed in SRS (postsrsd 2's format).
// Signing and verifying need none; these two features do. One interface, several
// stores: in process (default), SQLite (persistent); the Session never knows which.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backstop/base/clock.hpp"
#include "backstop/base/result.hpp"

namespace backstop {

// A remote address that hard-bounced mail we sent.
struct BounceRecord {
    std::string address;  // lowercased
    std::string status;   // last RFC 3463 status seen
    std::string reason;   // last reason seen
    UnixTime first_seen = 0;
    UnixTime last_seen = 0;
    std::uint64_t count = 0;
};

// Thread-safe. Every call may fail (a database gone away): the caller applies its
// on-state-error policy.
class StateStore {
  public:
    virtual ~StateStore() = default;
    // Records one event for key at now; returns how many fall in (now - window, now].
    virtual Result<std::uint64_t, Failure> hit(const std::string& key, UnixTime now,
                                               UnixTime window) = 0;
    // Adds one hard bounce (count + 1, last status/reason/time updated).
    virtual Result<bool, Failure> record_bounce(const std::string& address,
                                                const std::string& status,
                                                const std::string& reason, UnixTime now) = 0;
    // Reads leave out records that expired by now (see StateOptions::bounce_ttl).
    virtual Result<std::optional<BounceRecord>, Failure> bounce(const std::string& address,
                                                                UnixTime now) = 0;
    virtual Result<std::vector<BounceRecord>, Failure> bounces(UnixTime now) = 0;
    // True when there was a record to remove.
    virtual Result<bool, Failure> forget(const std::string& address) = 0;

    // Stores alias -> sender ("ALIAS@1", envelope/srs_alias.hpp) for ttl seconds from
    // now, in postsrsd 2's layout, so both can read each other's aliases.
    virtual Result<bool, Failure> put_alias(const std::string& alias, const std::string& sender,
                                            UnixTime now, UnixTime ttl);
    // The sender of an alias; nullopt when there is none or it expired by now.
    virtual Result<std::optional<std::string>, Failure> alias(const std::string& alias,
                                                              UnixTime now);
};

struct StateOptions {
    // Bounds each Redis call, connecting included.
    int timeout_ms = 250;
    // A hard-bounce record with no new bounce for this long is gone; 0: kept forever.
    UnixTime bounce_ttl = 0;
    // false: an SQLite file must already exist (readers such as the admin CLI must
    // not leave an empty database behind a typo).
    bool create = true;
};

// "memory", "sqlite:/path/state.db" or "redis://host:port/db". Errors name the spec.
// A Redis store connects lazily, so opening it succeeds while the server is down.
Result<std::shared_ptr<StateStore>, Failure> open_state(const std::string& spec,
                                                        const StateOptions& options = {});

// "20/10m": at most 20 per 10 minutes (s, m, h, d units). Returns {limit, seconds}.
Result<std::pair<std::uint64_t, UnixTime>, Failure> parse_rate(const std::string& text);

}  // namespace backstop
