// Finding the Redis master through Sentinel: ask each Sentinel in turn for the
// master's address, then check on the master itself that it is one (ROLE), since a
// Sentinel may still name a master that has just been demoted.
#pragma once

#include <string>
#include <vector>

#include "redis_connection.hpp"

namespace backstop {

// The master's address, or a Failure naming each Sentinel and why it did not answer.
Result<RedisAddress, Failure> ask_sentinels(const std::vector<RedisAddress>& sentinels,
                                            const std::string& master_name,
                                            const RedisLogin& login);

// Empty when the connected server is a master; else why not ("a replica", ...).
std::string check_master_role(RedisConnection& c);

}  // namespace backstop
