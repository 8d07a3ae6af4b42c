#include "backstop/envelope/batv.hpp"

#include <array>
#include <optional>
#include <stdexcept>

#include "backstop/base/ascii.hpp"
#include "backstop/base/encoding.hpp"
#include "backstop/base/hmac.hpp"
#include "backstop/envelope/address.hpp"
#include "plain_address.hpp"

namespace backstop {

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// KDDDSSSSSS: key digit, 3-digit day, 6 hex digits.
bool tag_ok(std::string_view t) {
    if (t.size() != 10) return false;
    for (int i = 0; i < 4; ++i) {
        if (!is_digit(t[i])) return false;
    }
    for (int i = 4; i < 10; ++i) {
        if (!is_hex(t[i])) return false;
    }
    return true;
}

int day_stamp_of(UnixTime now) {
    return int(((unix_day(now) % 1000) + 1000) % 1000);
}

struct Split {
    std::string_view local, domain;
    Address storage;
};

bool split(std::string_view address, Split& out) {
    if (split_plain_address(address, out.local, out.domain)) return true;
    auto a = parse_address(address);
    if (!a || a->is_null() || a->domain.empty()) return false;
    out.storage = std::move(a).value();
    out.local = out.storage.local;
    out.domain = out.storage.domain;
    return true;
}

std::string join(std::string_view local, std::string_view domain) {
    std::string out = format_local(local);
    out.append("@").append(domain);
    return out;
}

BatvParsed parsed_tag(BatvForm form, std::string_view tag, std::string original) {
    BatvParsed p;
    p.form = form;
    p.key_number = tag[0] - '0';
    p.day_stamp = (tag[1] - '0') * 100 + (tag[2] - '0') * 10 + (tag[3] - '0');
    p.signature = std::string(tag.substr(4));
    p.original = std::move(original);
    return p;
}

}  // namespace

const char* to_string(BatvStatus status) {
    switch (status) {
        case BatvStatus::valid:
            return "valid";
        case BatvStatus::missing:
            return "missing";
        case BatvStatus::malformed:
            return "malformed";
        case BatvStatus::expired:
            return "expired";
        case BatvStatus::bad_signature:
            return "bad-signature";
        case BatvStatus::unknown_key:
            return "unknown-key";
    }
    return "unknown";
}

Result<BatvParsed, BatvStatus> parse_batv(std::string_view address, bool accept_subaddress) {
    Split s;
    if (!split(address, s)) return BatvStatus::missing;
    std::string_view local = s.local;
    if (istarts_with(local, "prvs=")) {
        std::string_view rest = local.substr(5);
        if (rest.size() > 11 && rest[10] == '=' && tag_ok(rest.substr(0, 10))) {
            return parsed_tag(BatvForm::standard, rest.substr(0, 10),
                              join(rest.substr(11), s.domain));
        }
        // Old draft order, still sent by some appliances: prvs=local=TAG@domain.
        std::size_t eq = rest.rfind('=');
        if (eq != std::string_view::npos && eq > 0 && tag_ok(rest.substr(eq + 1))) {
            return parsed_tag(BatvForm::old_order, rest.substr(eq + 1),
                              join(rest.substr(0, eq), s.domain));
        }
        return BatvStatus::malformed;
    }
    if (accept_subaddress) {
        // local+prvs=TAG@domain: the tag in a sub-address, for MTAs that cannot
        // rewrite the front of the local part.
        for (std::size_t i = local.size(); i-- > 0;) {
            if (local[i] == '+' && istarts_with(local.substr(i + 1), "prvs=")) {
                std::string_view tag = local.substr(i + 6);
                if (i == 0 || !tag_ok(tag)) return BatvStatus::malformed;
                return parsed_tag(BatvForm::subaddress, tag, join(local.substr(0, i), s.domain));
            }
        }
    }
    return BatvStatus::missing;
}

struct BatvSigner::Impl {
    std::array<std::optional<HmacSha1>, 10> keys;
    int signing_key = 0;

    std::string signature(int k, int day, std::string_view address) const {
        char prefix[4] = {char('0' + k), char('0' + day / 100), char('0' + day / 10 % 10),
                          char('0' + day % 10)};
        auto d = keys[std::size_t(k)]->compute({std::string_view(prefix, 4), address});
        return hex_encode(d.data(), 3);
    }
};

BatvSigner::BatvSigner(const BatvKeys& keys, BatvOptions options)
    : options_(options), impl_(std::make_unique<Impl>()) {
    if (keys.keys.empty()) throw std::invalid_argument("BATV needs at least one key");
    if (options_.lifetime < 1 || options_.lifetime > 999)
        throw std::invalid_argument("BATV lifetime must be 1 to 999 days");
    for (const auto& k : keys.keys) {
        if (k.number < 0 || k.number > 9)
            throw std::invalid_argument("BATV key numbers are 0 to 9");
        impl_->keys[std::size_t(k.number)].emplace(k.secret);
    }
    impl_->signing_key = keys.keys.front().number;
}

BatvSigner::~BatvSigner() = default;
BatvSigner::BatvSigner(BatvSigner&&) noexcept = default;
BatvSigner& BatvSigner::operator=(BatvSigner&&) noexcept = default;

std::string BatvSigner::sign_with(std::string_view address, int key_number, int day_stamp) const {
    if (key_number < 0 || key_number > 9 || !impl_->keys[std::size_t(key_number)]) {
        throw std::invalid_argument("no BATV key " + std::to_string(key_number));
    }
    day_stamp = ((day_stamp % 1000) + 1000) % 1000;
    std::string sig = impl_->signature(key_number, day_stamp, address);
    char head[10];
    std::snprintf(head, sizeof head, "%d%03d", key_number, day_stamp);
    std::string local = "prvs=";
    local.append(head).append(sig).append("=");
    // The tag goes inside the local part; a quoted local part is quoted as a whole.
    Split s;
    if (!split(address, s)) return local.append(address);
    local.append(s.local);
    return join(local, s.domain);
}

Result<std::string, Failure> BatvSigner::sign(std::string_view address, UnixTime now) const {
    Split s;
    if (!split(address, s)) {
        auto a = parse_address(address);
        if (!a) return Failure{a.error().message};
        return Failure{a->is_null() ? "the null sender is never tagged" : "no @domain in address"};
    }
    std::string plain = join(s.local, s.domain);
    // Re-tag from the original so a resent message does not collect tags.
    if (auto p = parse_batv(plain, options_.accept_subaddress); p.ok()) plain = p->original;
    return sign_with(plain, impl_->signing_key, day_stamp_of(now) + options_.lifetime);
}

BatvVerdict BatvSigner::verify(std::string_view address, UnixTime now) const {
    BatvVerdict v;
    auto p = parse_batv(address, options_.accept_subaddress);
    if (!p) {
        v.status = p.error();
        v.message = v.status == BatvStatus::missing ? "no BATV tag" : "BATV tag does not parse";
        return v;
    }
    v.form = p->form;
    v.original = p->original;
    if (!impl_->keys[std::size_t(p->key_number)]) {
        v.status = BatvStatus::unknown_key;
        v.message = "no BATV key number " + std::to_string(p->key_number);
        return v;
    }
    std::string want = impl_->signature(p->key_number, p->day_stamp, p->original);
    std::string have = ascii_lower(p->signature);
    if (!constant_time_equal(want, have)) {
        v.status = BatvStatus::bad_signature;
        v.message = "BATV signature does not match";
        return v;
    }
    // Bounded window: Exim accepts any future day stamp; we accept only the days
    // a tag signed within our lifetime can carry.
    int ahead = ((p->day_stamp - day_stamp_of(now)) % 1000 + 1000) % 1000;
    if (ahead > options_.lifetime) {
        v.status = BatvStatus::expired;
        v.message = "BATV tag expired (day stamp " + std::to_string(p->day_stamp) + ")";
        return v;
    }
    v.status = BatvStatus::valid;
    v.message = "valid";
    return v;
}

}  // namespace backstop
