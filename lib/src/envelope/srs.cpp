#include "backstop/envelope/srs.hpp"

#include <stdexcept>

#include "backstop/base/ascii.hpp"
#include "backstop/base/hmac.hpp"
#include "backstop/envelope/address.hpp"
#include "plain_address.hpp"

namespace backstop {

namespace {

constexpr std::size_t kMaxHash = 27;  // base64 characters of a 20-byte SHA-1

SrsError err(SrsErrc code, std::string message) {
    return {code, std::move(message)};
}

bool is_separator(char c) {
    return c == '=' || c == '+' || c == '-';
}

// "SRS0" or "SRS1" (any case) followed by a separator.
int srs_tag(std::string_view local) {
    if (local.size() < 5 || !is_separator(local[4]) || !istarts_with(local, "SRS")) return -1;
    if (local[3] == '0') return 0;
    if (local[3] == '1') return 1;
    return -1;
}

// Splits s on '=' into at most n fields; the last field keeps any further '='.
template <std::size_t N>
std::size_t split_fields(std::string_view s, std::string_view (&out)[N]) {
    std::size_t count = 0;
    while (count + 1 < N) {
        std::size_t eq = s.find('=');
        if (eq == std::string_view::npos) break;
        out[count++] = s.substr(0, eq);
        s = s.substr(eq + 1);
    }
    out[count++] = s;
    return count;
}

// Lowercased concatenation of the hash inputs in a stack buffer: the hot path
// must not allocate. Inputs longer than the buffer fall back to the heap.
class LoweredInput {
  public:
    LoweredInput(std::initializer_list<std::string_view> parts) {
        std::size_t total = 0;
        for (auto p : parts) total += p.size();
        char* dst = buf_;
        if (total > sizeof buf_) {
            heap_.resize(total);
            dst = heap_.data();
        }
        std::size_t w = 0;
        for (auto p : parts) {
            for (char c : p) dst[w++] = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
        }
        view_ = std::string_view(dst, w);
    }
    std::string_view view() const { return view_; }

  private:
    char buf_[512];
    std::string heap_;
    std::string_view view_;
};

}  // namespace

const char* to_string(SrsErrc code) {
    switch (code) {
        case SrsErrc::bad_address:
            return "not a valid address";
        case SrsErrc::null_sender:
            return "null sender is never rewritten";
        case SrsErrc::not_srs:
            return "not an SRS address";
        case SrsErrc::no_hash:
            return "no hash";
        case SrsErrc::hash_too_short:
            return "hash too short";
        case SrsErrc::no_timestamp:
            return "no time stamp";
        case SrsErrc::bad_timestamp:
            return "time stamp not base32";
        case SrsErrc::out_of_date:
            return "time stamp out of date";
        case SrsErrc::hash_invalid:
            return "hash invalid";
        case SrsErrc::malformed:
            return "malformed SRS address";
        case SrsErrc::too_long:
            return "SRS local part would exceed 64 octets";
    }
    return "unknown SRS error";
}

std::string srs_timestamp(UnixTime now) {
    unsigned day = unsigned(((unix_day(now) % 1024) + 1024) % 1024);
    return {base32_char(day >> 5), base32_char(day)};
}

struct SrsCodec::Impl {
    std::vector<HmacSha1> keys;

    // First hash_length base64 characters of the first key's HMAC.
    std::size_t make_hash(const SrsOptions& o, std::string_view data, char* out) const {
        auto d = keys.front().compute({data});
        return base64_encode_prefix(d.data(), d.size(), o.alphabet, out,
                                    std::size_t(o.hash_length));
    }

    // Case-insensitive, either alphabet, constant time per key.
    Result<bool, SrsError> verify_hash(const SrsOptions& o, std::string_view given,
                                       std::string_view data) const {
        if (given.empty()) return err(SrsErrc::no_hash, "no hash");
        if (given.size() < std::size_t(o.hash_minimum)) {
            return err(SrsErrc::hash_too_short, "hash too short: " + std::to_string(given.size()) +
                                                    " < hash-minimum " +
                                                    std::to_string(o.hash_minimum));
        }
        if (given.size() > kMaxHash) return err(SrsErrc::hash_invalid, "hash invalid");
        char want[kMaxHash], have[kMaxHash];
        for (std::size_t i = 0; i < given.size(); ++i) {
            char c = given[i];
            if (c == '-') c = '+';
            if (c == '_') c = '/';
            if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
            have[i] = c;
        }
        bool match = false;
        for (const auto& k : keys) {
            auto d = k.compute({data});
            base64_encode_prefix(d.data(), d.size(), Base64Alphabet::standard, want, given.size());
            for (std::size_t i = 0; i < given.size(); ++i) {
                if (want[i] >= 'A' && want[i] <= 'Z') want[i] = char(want[i] - 'A' + 'a');
            }
            // No early exit: every key is tried so timing does not tell which matched.
            match |= constant_time_equal({want, given.size()}, {have, given.size()});
        }
        if (!match) return err(SrsErrc::hash_invalid, "hash invalid");
        return true;
    }
};

std::string SrsCodec::check_options(const SrsOptions& o) {
    if (o.domain.empty()) return "srs domain is empty";
    auto parsed = parse_address("x@" + o.domain);
    if (!parsed) return "srs domain '" + o.domain + "': " + parsed.error().message;
    if (o.hash_length < 1 || o.hash_length > int(kMaxHash)) return "hash-length must be 1 to 27";
    if (o.hash_minimum < 1 || o.hash_minimum > o.hash_length) {
        return "hash-minimum must be 1 to hash-length (" + std::to_string(o.hash_length) + ")";
    }
    if (!is_separator(o.separator)) return "separator must be one of = + -";
    if (o.max_age < 1 || o.max_age > 1000) return "max-age must be 1 to 1000 days";
    return {};
}

SrsCodec::SrsCodec(const SrsSecrets& secrets, SrsOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
    if (secrets.secrets.empty()) throw std::invalid_argument("SRS needs at least one secret");
    if (auto why = check_options(options_); !why.empty()) throw std::invalid_argument(why);
    for (const auto& s : secrets.secrets) impl_->keys.emplace_back(s);
}

SrsCodec::~SrsCodec() = default;
SrsCodec::SrsCodec(SrsCodec&&) noexcept = default;
SrsCodec& SrsCodec::operator=(SrsCodec&&) noexcept = default;

Result<SrsForward, SrsError> SrsCodec::forward(std::string_view sender, UnixTime now) const {
    std::string_view local, domain;
    Address parsed;
    if (!split_plain_address(sender, local, domain)) {
        auto a = parse_address(sender);
        if (!a) return err(SrsErrc::bad_address, a.error().message);
        parsed = std::move(a).value();
        if (parsed.is_null()) return err(SrsErrc::null_sender, to_string(SrsErrc::null_sender));
        if (parsed.domain.empty()) return err(SrsErrc::bad_address, "no @domain in address");
        local = parsed.local;
        domain = parsed.domain;
    }
    const SrsOptions& o = options_;
    // Our own domain, or SRS we signed ourselves: rewriting again would only nest.
    auto unchanged = [&] {
        return SrsForward{format_local(local) + "@" + std::string(domain),
                          SrsForwardKind::unchanged};
    };
    if (iequals(domain, o.domain)) return unchanged();
    int tag = srs_tag(local);
    if (tag >= 0 && is_ours(sender, now)) return unchanged();

    char hash[kMaxHash];
    std::string srs_local;
    SrsForwardKind kind = SrsForwardKind::srs0;
    std::string_view srs1_host, srs1_user;
    if (tag == 0) {
        // Guarded SRS1: SRS0<sep>rest@h1 -> SRS1=HHHH=h1=<sep>rest
        srs1_host = domain;
        srs1_user = local.substr(4);
    } else if (tag == 1) {
        // SRS1=X=h=rest@x -> SRS1=H'=h=rest: the first forwarder stays the return hop.
        std::string_view f[3];
        if (split_fields(local.substr(5), f) == 3 && !f[1].empty() && !f[2].empty()) {
            srs1_host = f[1];
            srs1_user = f[2];
        }
    }
    if (!srs1_host.empty()) {
        kind = SrsForwardKind::srs1;
        LoweredInput in{srs1_host, srs1_user};
        std::size_t n = impl_->make_hash(o, in.view(), hash);
        srs_local.reserve(6 + n + srs1_host.size() + srs1_user.size() + 1 + o.domain.size());
        srs_local.append("SRS1").push_back(o.separator);
        srs_local.append(hash, n).append("=").append(srs1_host).append("=").append(srs1_user);
    } else {
        std::string ts = srs_timestamp(now);
        LoweredInput in{ts, domain, local};
        std::size_t n = impl_->make_hash(o, in.view(), hash);
        srs_local.reserve(8 + n + 2 + domain.size() + local.size() + 1 + o.domain.size());
        srs_local.append("SRS0").push_back(o.separator);
        srs_local.append(hash, n)
            .append("=")
            .append(ts)
            .append("=")
            .append(domain)
            .append("=")
            .append(local);
    }
    // One allocation in the common case: the buffer reserved above becomes the result.
    std::string formatted =
        local_is_dot_atom(srs_local) ? std::move(srs_local) : format_local(srs_local);
    if (formatted.size() > 64) {
        return err(SrsErrc::too_long, "SRS local part would be " +
                                          std::to_string(formatted.size()) +
                                          " octets, RFC 5321 allows 64");
    }
    formatted.append("@").append(o.domain);
    return SrsForward{std::move(formatted), kind};
}

Result<SrsReverse, SrsError> SrsCodec::reverse(std::string_view address, UnixTime now) const {
    std::string_view local, domain;
    Address parsed;
    if (!split_plain_address(address, local, domain)) {
        auto a = parse_address(address);
        if (!a) return err(SrsErrc::bad_address, a.error().message);
        parsed = std::move(a).value();
        local = parsed.local;
    }
    const SrsOptions& o = options_;
    int tag = srs_tag(local);
    if (tag < 0) return err(SrsErrc::not_srs, to_string(SrsErrc::not_srs));
    std::string_view rest = local.substr(5);

    if (tag == 1) {
        std::string_view f[3];
        std::size_t n = split_fields(rest, f);
        if (f[0].empty()) return err(SrsErrc::no_hash, "no hash");
        if (n < 3 || f[1].empty() || f[2].empty())
            return err(SrsErrc::malformed, "SRS1 address without host or user");
        LoweredInput in{f[1], f[2]};
        auto ok = impl_->verify_hash(o, f[0], in.view());
        if (!ok) return ok.error();
        std::string out = "SRS0";
        out.append(f[2]);
        return SrsReverse{format_local(out) + "@" + std::string(f[1]), true};
    }

    std::string_view f[4];
    std::size_t n = split_fields(rest, f);
    if (f[0].empty()) return err(SrsErrc::no_hash, "no hash");
    if (n < 2 || f[1].empty()) return err(SrsErrc::no_timestamp, "no time stamp");
    if (f[1].size() != 2 || base32_value(f[1][0]) < 0 || base32_value(f[1][1]) < 0) {
        return err(SrsErrc::bad_timestamp,
                   "time stamp '" + std::string(f[1]) + "' is not 2 base32 characters");
    }
    if (n < 4 || f[2].empty() || f[3].empty())
        return err(SrsErrc::malformed, "SRS0 address without host or user");
    LoweredInput in{f[1], f[2], f[3]};
    auto ok = impl_->verify_hash(o, f[0], in.view());
    if (!ok) return ok.error();
    int stamp = (base32_value(f[1][0]) << 5) | base32_value(f[1][1]);
    int today = int(((unix_day(now) % 1024) + 1024) % 1024);
    // A stamp from the future wraps to a large age and is refused too.
    int age = ((today - stamp) % 1024 + 1024) % 1024;
    if (age > o.max_age) {
        return err(SrsErrc::out_of_date, "time stamp out of date (" + std::to_string(age) +
                                             " days, max-age " + std::to_string(o.max_age) + ")");
    }
    return SrsReverse{format_local(f[3]) + "@" + std::string(f[2]), false};
}

bool SrsCodec::is_ours(std::string_view address, UnixTime now) const {
    return reverse(address, now).ok();
}

Result<std::string, SrsError> srs_decode_unverified(std::string_view local) {
    int tag = srs_tag(local);
    if (tag < 0) return err(SrsErrc::not_srs, to_string(SrsErrc::not_srs));
    std::string_view rest = local.substr(5);
    if (tag == 1) {
        std::string_view f[3];
        if (split_fields(rest, f) < 3 || f[1].empty() || f[2].empty())
            return err(SrsErrc::malformed, "malformed SRS1");
        std::string out = "SRS0";
        out.append(f[2]).append("@").append(f[1]);
        return out;
    }
    std::string_view f[4];
    if (split_fields(rest, f) < 4 || f[2].empty() || f[3].empty())
        return err(SrsErrc::malformed, "malformed SRS0");
    std::string out(f[3]);
    out.append("@").append(f[2]);
    return out;
}

}  // namespace backstop
