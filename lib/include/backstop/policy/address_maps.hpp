// The address maps the socketmap serves to the MTA (Postfix socketmap_table(5),
// Sendmail's socket map), as postsrsd 2 names them:
//   forward  a forwarded foreign sender -> its SRS address (sender_canonical_maps)
//   reverse  a valid SRS or BATV address of ours -> the real mailbox
//            (recipient_canonical_maps: Postfix then knows the signed recipient)
// Only the decision lives here; milter/ speaks the protocol.
#pragma once

#include <string>
#include <string_view>

#include "backstop/base/clock.hpp"
#include "backstop/policy/policy.hpp"
#include "backstop/state/store.hpp"

namespace backstop {

enum class MapStatus {
    ok,        // value: the rewritten address
    notfound,  // nothing to rewrite; why: the reason, for a debug log only
    temp,      // value: the reason; the MTA tries again later
    perm,      // value: the reason; the MTA treats the lookup as failed
};

const char* to_string(MapStatus status);

struct MapAnswer {
    MapStatus status = MapStatus::notfound;
    std::string value;           // ok: the address; temp, perm: the reason sent to the MTA
    std::string why;             // notfound: why nothing matched (never sent)
    bool alias_written = false;  // forward stored a sender's SRS alias (original-envelope)
    bool too_long = false;       // forward: too long to embed, and embedded it had to be
};

// One lookup of 'key' in the map named 'map' ("forward" or "reverse"); any other
// name is PERM. Never throws: an internal error is TEMP, so no mail is lost.
// state holds the SRS aliases of [srs] original-envelope; a store that fails is
// TEMP (forward: only with on-state-error = tempfail, else NOTFOUND).
MapAnswer lookup(const Policy& policy, std::string_view map, std::string_view key, UnixTime now,
                 StateStore* state = nullptr);

}  // namespace backstop
