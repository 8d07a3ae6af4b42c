#include "backstop/policy/address_maps.hpp"

#include <exception>

#include "backstop/envelope/address.hpp"
#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/srs.hpp"
#include "backstop/policy/original_envelope.hpp"

namespace backstop {

namespace {

MapAnswer found(std::string address) {
    return {MapStatus::ok, std::move(address), {}};
}

MapAnswer notfound(std::string why) {
    return {MapStatus::notfound, {}, std::move(why)};
}

// Postfix also asks partial keys ("user", "@domain") after the full address; only
// a whole address can be signed or reversed.
Result<Address, Failure> whole_address(std::string_view key) {
    if (key.empty() || key == "<>") return Failure{"null sender"};
    if (key.find('@') == std::string_view::npos) return Failure{"not an address (no @)"};
    auto a = parse_address(key);
    if (!a) return Failure{"not an address: " + a.error().message};
    if (a->is_null()) return Failure{"null sender"};
    if (a->local.empty() || a->domain.empty()) return Failure{"not a whole address"};
    return std::move(a).value();
}

// As the milter rewrites a forwarded sender at end of message (Session): our own
// domains get BATV there, never SRS; SrsCodec leaves our own SRS unchanged.
MapAnswer forward(const Policy& p, std::string_view key, UnixTime now, StateStore* state) {
    if (!p.srs()) return notfound("srs is off");
    auto a = whole_address(key);
    if (!a) return notfound(a.error().message);
    if (p.is_local_domain(a->domain)) return notfound("local sender");
    const std::string sender = a->str();
    auto f = plan_srs_forward(p, sender, now);
    if (!f) {
        MapAnswer answer = notfound(std::string("srs refused: ") + f.error().message);
        answer.too_long = f.error().code == SrsErrc::too_long;
        return answer;
    }
    if (f->kind == SrsForwardKind::unchanged) return notfound("already srs");
    auto stored = store_srs_alias(p, state, *f, sender, now);
    if (!stored) {
        // accept: the sender goes out unchanged, as with a sender that does not fit.
        if (p.config().on_state_error == Action::tempfail)
            return {MapStatus::temp, "SRS alias not stored: " + stored.error().message, {}};
        return notfound("SRS alias not stored: " + stored.error().message);
    }
    MapAnswer answer = found(f->address);
    answer.alias_written = *stored;
    return answer;
}

// As the milter accepts a bounce's recipient (Session::inbound_rcpt): only an
// address we signed maps back; forged, stale, unsigned or foreign is never a relay.
MapAnswer reverse(const Policy& p, std::string_view key, UnixTime now, StateStore* state) {
    auto a = whole_address(key);
    if (!a) return notfound(a.error().message);
    if (p.is_srs_domain(a->domain) && srs_decode_unverified(a->local).ok()) {
        SrsReversal r = reverse_srs(p, state, a->str(), now);
        // NOTFOUND would refuse the bounce for good: a store that failed is TEMP.
        if (r.status == SrsReverseStatus::state_error) return {MapStatus::temp, r.why, {}};
        if (r.status != SrsReverseStatus::ok) return notfound(r.why);
        return found(r.address);
    }
    if (!p.is_local_domain(a->domain)) return notfound("not our domain");
    if (!p.batv()) return notfound("batv is off");
    BatvVerdict v = p.batv()->verify(a->str(), now);
    if (v.status != BatvStatus::valid)
        return notfound(std::string("BATV tag ") + to_string(v.status));
    return found(v.original);
}

}  // namespace

const char* to_string(MapStatus status) {
    switch (status) {
        case MapStatus::ok:
            return "OK";
        case MapStatus::notfound:
            return "NOTFOUND";
        case MapStatus::temp:
            return "TEMP";
        case MapStatus::perm:
            return "PERM";
    }
    return "PERM";
}

MapAnswer lookup(const Policy& policy, std::string_view map, std::string_view key, UnixTime now,
                 StateStore* state) {
    try {
        if (map == "forward") return forward(policy, key, now, state);
        if (map == "reverse") return reverse(policy, key, now, state);
        return {MapStatus::perm, "unknown map (forward or reverse)", {}};
    } catch (const std::exception& e) {
        return {MapStatus::temp, std::string("internal error: ") + e.what(), {}};
    } catch (...) {
        return {MapStatus::temp, "internal error", {}};
    }
}

}  // namespace backstop
