#include "backstop/state/store.hpp"

#include "stores.hpp"

namespace backstop {

// A store that keeps no aliases says so; the caller applies on-state-error.
Result<bool, Failure> StateStore::put_alias(const std::string&, const std::string&, UnixTime,
                                            UnixTime) {
    return Failure{"this state store keeps no SRS aliases"};
}

Result<std::optional<std::string>, Failure> StateStore::alias(const std::string&, UnixTime) {
    return Failure{"this state store keeps no SRS aliases"};
}

Result<std::shared_ptr<StateStore>, Failure> open_state(const std::string& spec,
                                                        const StateOptions& options) {
    if (spec.empty() || spec == "memory") return make_memory_store(options);
    if (spec.rfind("sqlite:", 0) == 0 && spec.size() > 7)
        return open_sqlite_store(spec.substr(7), options);
    for (const char* scheme :
         {"redis://", "rediss://", "redis-sentinel://", "rediss-sentinel://"}) {
        if (spec.rfind(scheme, 0) == 0) return open_redis_store(spec, options);
    }
    return Failure{"state '" + spec +
                   "': expected memory, sqlite:/path/state.db, redis://host:port/db, "
                   "rediss://host:port/db or redis-sentinel://host:port,host:port/MASTER/db"};
}

Result<StateSpecNeeds, Failure> check_state_spec(const std::string& spec) {
    if (spec.find("://") != std::string::npos) return check_redis_url(spec);
    if (spec.empty() || spec == "memory" || (spec.rfind("sqlite:", 0) == 0 && spec.size() > 7))
        return StateSpecNeeds{};
    return open_state(spec).error();
}

Result<std::pair<std::uint64_t, UnixTime>, Failure> parse_rate(const std::string& text) {
    std::size_t slash = text.find('/');
    auto bad = [&] {
        return Failure{"'" + text + "' is not a rate like 20/10m (units s, m, h, d)"};
    };
    if (slash == std::string::npos || slash == 0 || slash > 9) return bad();
    std::string count = text.substr(0, slash), span = text.substr(slash + 1);
    if (count.find_first_not_of("0123456789") != std::string::npos || span.empty()) return bad();
    std::size_t digits = span.find_first_not_of("0123456789");
    std::string number = span.substr(0, digits);
    std::string unit = digits == std::string::npos ? "s" : span.substr(digits);
    if (number.empty() || number.size() > 6 || unit.size() != 1) return bad();
    UnixTime scale = unit == "s"   ? 1
                     : unit == "m" ? 60
                     : unit == "h" ? 3600
                     : unit == "d" ? 86400
                                   : 0;
    if (!scale) return bad();
    std::uint64_t limit = std::stoull(count);
    UnixTime seconds = UnixTime(std::stoll(number)) * scale;
    if (limit == 0 || seconds == 0) return bad();
    return std::make_pair(limit, seconds);
}

}  // namespace backstop
