// The store implementations behind open_state().
#pragma once

#include <memory>
#include <string>

#include "backstop/state/store.hpp"

namespace backstop {

std::shared_ptr<StateStore> make_memory_store(const StateOptions& options);
Result<std::shared_ptr<StateStore>, Failure> open_sqlite_store(const std::string& path,
                                                               const StateOptions& options);
// spec: redis[s]://[user@]host[:port][/db], redis[s]-sentinel://[user@]h:p,h:p/MASTER[/db].
Result<StateSpecNeeds, Failure> check_redis_url(const std::string& spec);
Result<std::shared_ptr<StateStore>, Failure> open_redis_store(const std::string& spec,
                                                              const StateOptions& options);

// True when a record last seen at last_seen has expired by now.
inline bool bounce_expired(UnixTime last_seen, UnixTime now, UnixTime ttl) {
    return ttl > 0 && last_seen <= now - ttl;
}

}  // namespace backstop
