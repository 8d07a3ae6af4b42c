#include "backstop/policy/original_envelope.hpp"

#include "backstop/envelope/srs_alias.hpp"

namespace backstop {

Result<SrsPlan, SrsError> plan_srs_forward(const Policy& p, std::string_view sender, UnixTime now) {
    const SrsCodec& srs = *p.srs();
    const OriginalEnvelope mode = original_envelope(p.config());
    auto f = srs.forward(sender, now);
    // database stores every plain sender (postsrsd 2 leaves SRS senders to SRS1);
    // auto only those that do not fit, and so does database for a long SRS sender.
    bool use_alias = false;
    if (mode != OriginalEnvelope::embedded) {
        if (f) {
            use_alias = mode == OriginalEnvelope::database && f->kind == SrsForwardKind::srs0;
        } else {
            use_alias = f.error().code == SrsErrc::too_long;
        }
    }
    if (!use_alias) {
        if (!f) return f.error();
        return SrsPlan{std::move(f->address), f->kind, {}};
    }
    std::string alias = srs_alias(sender);
    auto a = srs.forward(alias, now);
    if (!a) return a.error();
    return SrsPlan{std::move(a->address), SrsForwardKind::srs0, std::move(alias)};
}

Result<bool, Failure> store_srs_alias(const Policy& p, StateStore* state, const SrsPlan& plan,
                                      std::string_view sender, UnixTime now) {
    if (plan.alias.empty()) return false;
    if (!state) return Failure{"no state store for SRS aliases"};
    return state->put_alias(plan.alias, std::string(sender), now,
                            UnixTime(p.config().srs_max_age) * 86400);
}

SrsReversal reverse_srs(const Policy& p, StateStore* state, std::string_view address,
                        UnixTime now) {
    SrsReversal out;
    auto r = p.srs()->reverse(address, now);
    if (!r) {
        out.error = r.error().code;
        out.why = std::string("SRS ") + to_string(r.error().code);
        return out;
    }
    auto key = srs_alias_key(r->address);
    if (!key) {
        out.status = SrsReverseStatus::ok;
        out.address = std::move(r->address);
        return out;
    }
    if (!state) {
        out.status = SrsReverseStatus::state_error;
        out.why = "no state store for SRS aliases";
        return out;
    }
    auto sender = state->alias(*key, now);
    if (!sender) {
        out.status = SrsReverseStatus::state_error;
        out.why = sender.error().message;
        return out;
    }
    if (!*sender) {
        out.status = SrsReverseStatus::unknown_alias;
        out.why = "SRS alias " + *key + " unknown";
        return out;
    }
    out.status = SrsReverseStatus::ok;
    out.address = std::move(**sender);
    out.via_alias = true;
    return out;
}

}  // namespace backstop
