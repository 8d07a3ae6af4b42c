// SPF, only to decide whether a forwarded foreign sender needs SRS: when our relay
// is not allowed to send for that domain. A DNS failure or a slow answer counts as
// "rewrite", the safe side.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "backstop/base/clock.hpp"

namespace backstop {

enum class SpfVerdict { pass, fail, softfail, neutral, none, temperror, permerror, timeout };
const char* to_string(SpfVerdict v);

// True when mail from this sender, sent by our relay, would not pass SPF as it is.
constexpr bool spf_needs_rewrite(SpfVerdict v) {
    return v != SpfVerdict::pass && v != SpfVerdict::neutral && v != SpfVerdict::none;
}

class SpfChecker {
  public:
    virtual ~SpfChecker() = default;
    // Evaluates SPF for 'sender' (local@domain) as if sent from our relay's address.
    virtual SpfVerdict check(std::string_view sender, UnixTime now) const = 0;
};

struct SpfOptions {
    std::string relay_address;  // our outbound IP, v4 or v6
    int timeout_ms = 2000;      // deadline for one evaluation
    int cache_seconds = 300;    // verdicts are cached per sender domain this long
    std::size_t cache_entries = 10000;
    std::size_t max_in_flight = 64;  // evaluations still running past their deadline
};

// libspf2 with a deadline and a cache. Each evaluation runs on its own thread with
// its own SPF_server_t (libspf2 servers are not shared between threads); one that
// misses the deadline is abandoned and finishes in the background.
std::shared_ptr<SpfChecker> make_libspf2_checker(const SpfOptions& options);

}  // namespace backstop
