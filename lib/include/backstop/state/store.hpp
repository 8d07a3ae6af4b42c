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
    // Reaches the store and gets an answer (a remote one: connect, log in, PING), for
    // --check-config --connect and the start-up log.
    virtual Result<bool, Failure> check() { return true; }

    // Stores alias -> sender ("ALIAS@1", envelope/srs_alias.hpp) for ttl seconds from
    // now, in postsrsd 2's layout, so both can read each other's aliases.
    virtual Result<bool, Failure> put_alias(const std::string& alias, const std::string& sender,
                                            UnixTime now, UnixTime ttl);
    // The sender of an alias; nullopt when there is none or it expired by now.
    virtual Result<std::optional<std::string>, Failure> alias(const std::string& alias,
                                                              UnixTime now);
};

struct StateOptions {
    // Bounds each step of a Redis call: connecting and logging in (TLS, AUTH, SELECT),
    // asking a Sentinel, each command.
    int timeout_ms = 250;
    // A hard-bounce record with no new bounce for this long is gone; 0: kept forever.
    UnixTime bounce_ttl = 0;
    // false: an SQLite file must already exist (readers such as the admin CLI must
    // not leave an empty database behind a typo).
    bool create = true;
    // Redis: the password (read from redis-password-file under the key-file rules;
    // never logged), the CA that signs the server's certificate (rediss), and an
    // optional client certificate with its key (PEM text, read like the password).
    std::string redis_password;
    std::string redis_ca_file;
    std::string redis_cert_file;
    std::string redis_key_pem;
    std::string redis_key_file;  // names the key in messages
};

// "memory", "sqlite:/path/state.db", "redis://[user@]host[:port][/db]" (rediss:// for
// TLS) or "redis-sentinel://host:port,host:port/MASTER[/db]" (rediss-sentinel:// for
// TLS). Errors name the spec. A Redis store connects lazily, so opening it succeeds
// while the server is down (check() connects).
Result<std::shared_ptr<StateStore>, Failure> open_state(const std::string& spec,
                                                        const StateOptions& options = {});

// What a spec asks of the options, from its syntax alone (no file read, no
// connection), for the configuration's checks; a Failure says what is wrong with it.
struct StateSpecNeeds {
    bool remote = false;    // Redis: the redis-* options apply
    bool tls = false;       // rediss: redis-ca-file required
    bool password = false;  // user@ in the URL: redis-password-file required
};
Result<StateSpecNeeds, Failure> check_state_spec(const std::string& spec);

// "20/10m": at most 20 per 10 minutes (s, m, h, d units). Returns {limit, seconds}.
Result<std::pair<std::uint64_t, UnixTime>, Failure> parse_rate(const std::string& text);

}  // namespace backstop
