#include "backstop/policy/address_maps.hpp"

#include <exception>

#include "backstop/envelope/address.hpp"
#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/srs.hpp"

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
MapAnswer forward(const Policy& p, std::string_view key, UnixTime now) {
    if (!p.srs()) return notfound("srs is off");
    auto a = whole_address(key);
    if (!a) return notfound(a.error().message);
    if (p.is_local_domain(a->domain)) return notfound("local sender");
    auto f = p.srs()->forward(a->str(), now);
    if (!f) return notfound(std::string("srs refused: ") + f.error().message);
    if (f->kind == SrsForwardKind::unchanged) return notfound("already srs");
    return found(f->address);
}

// As the milter accepts a bounce's recipient (Session::inbound_rcpt): only an
// address we signed maps back; forged, stale, unsigned or foreign is never a relay.
MapAnswer reverse(const Policy& p, std::string_view key, UnixTime now) {
    auto a = whole_address(key);
    if (!a) return notfound(a.error().message);
    if (p.is_srs_domain(a->domain) && srs_decode_unverified(a->local).ok()) {
        auto r = p.srs()->reverse(a->str(), now);
        if (!r) return notfound(std::string("SRS ") + to_string(r.error().code));
        return found(r->address);
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

MapAnswer lookup(const Policy& policy, std::string_view map, std::string_view key, UnixTime now) {
    try {
        if (map == "forward") return forward(policy, key, now);
        if (map == "reverse") return reverse(policy, key, now);
        return {MapStatus::perm, "unknown map (forward or reverse)", {}};
    } catch (const std::exception& e) {
        return {MapStatus::temp, std::string("internal error: ") + e.what(), {}};
    } catch (...) {
        return {MapStatus::temp, "internal error", {}};
    }
}

}  // namespace backstop
