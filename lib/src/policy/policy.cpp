#include "backstop/policy/policy.hpp"

#include <fstream>

#include "backstop/base/ascii.hpp"
#include "backstop/envelope/address.hpp"
#include "backstop/envelope/keyring.hpp"

namespace backstop {

namespace {

// Glob with '*' only, ASCII case-insensitive.
bool glob(std::string_view p, std::string_view s) {
    std::size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
    while (si < s.size()) {
        if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < p.size() && ascii_lower(p[pi]) == ascii_lower(s[si])) {
            ++pi;
            ++si;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*') ++pi;
    return pi == p.size();
}

Result<std::vector<std::string>, Failure> read_lines(const std::string& key,
                                                     const std::string& path) {
    std::ifstream in(path);
    if (!in) return Failure{key + ": " + path + ": cannot open"};
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
            line.pop_back();
        std::size_t b = line.find_first_not_of(" \t");
        if (b == std::string::npos || line[b] == '#') continue;
        out.push_back(line.substr(b));
    }
    return out;
}

}  // namespace

bool address_matches(std::string_view pattern, std::string_view address) {
    if (!pattern.empty() && pattern.front() == '@') {
        std::size_t at = address.rfind('@');
        return at != std::string_view::npos && iequals(address.substr(at + 1), pattern.substr(1));
    }
    if (pattern.find('@') == std::string_view::npos && pattern != "*") {
        // A bare local part pattern: "postmaster" matches postmaster at any domain.
        std::size_t at = address.rfind('@');
        return glob(pattern, address.substr(0, at));
    }
    return glob(pattern, address);
}

Result<std::shared_ptr<const Policy>, Failure> Policy::build(const Config& c,
                                                             std::shared_ptr<SpfChecker> spf) {
    auto p = std::make_shared<Policy>();
    p->config_ = c;
    for (const auto& d : c.local_domains) p->local_domains_.insert(ascii_lower(d));
    for (const auto& d : c.relay_domains) p->relay_domains_.insert(ascii_lower(d));
    auto nets = parse_networks(c.internal_networks);
    if (!nets) return Failure{"[domains] internal-networks: " + nets.error().message};
    p->networks_ = std::move(nets).value();

    if (c.srs_enable) {
        auto secrets = load_secret_list(c.srs_secrets);
        if (!secrets) return Failure{"[srs] secrets: " + secrets.error().message};
        SrsOptions o;
        o.domain = c.srs_domain;
        o.hash_length = c.srs_hash_length;
        o.hash_minimum = c.srs_hash_minimum;
        o.max_age = c.srs_max_age;
        o.separator = c.srs_separator;
        o.alphabet = c.srs_alphabet == "url" ? Base64Alphabet::url : Base64Alphabet::standard;
        if (auto why = SrsCodec::check_options(o); !why.empty()) return Failure{"[srs]: " + why};
        p->srs_.emplace(*secrets, o);
        if (c.srs_spf_check) {
            if (!spf) {
                SpfOptions so;
                so.relay_address = c.srs_spf_relay_address;
                so.timeout_ms = c.srs_spf_timeout_ms;
                spf = make_libspf2_checker(so);
            }
            p->spf_ = std::move(spf);
        }
    }
    if (c.batv_enable) {
        auto keys = load_batv_keys(c.batv_keys);
        if (!keys) return Failure{"[batv] keys: " + keys.error().message};
        p->batv_.emplace(*keys, BatvOptions{c.batv_lifetime, c.batv_subaddress});
    }
    if (c.watermark_enable || !c.watermark_keys.empty()) {
        if (c.watermark_keys.empty()) return Failure{"[watermark] keys: required"};
        auto keys = load_secret_list(c.watermark_keys);
        if (!keys) return Failure{"[watermark] keys: " + keys.error().message};
        WatermarkConfig wc;
        wc.header_name = c.watermark_header;
        wc.lifetime = UnixTime(c.watermark_lifetime) * 86400;
        wc.mailscanner_secret = c.watermark_mailscanner_secret;
        p->watermark_.emplace(std::move(keys).value(), wc);
    }
    if (c.storm_limit != "off") {
        auto rate = parse_rate(c.storm_limit);
        if (!rate) return Failure{"[inbound] storm-limit: " + rate.error().message};
        p->storm_limit_ = *rate;
    }
    for (const auto& entry : c.storm_limits) {
        std::size_t eq = entry.rfind('=');
        std::string rate = entry.substr(eq + 1);
        std::optional<Rate> limit;
        if (rate != "off") {
            auto r = parse_rate(rate);
            if (!r) return Failure{"[inbound] storm-limits: " + r.error().message};
            limit = *r;
        }
        p->storm_limits_.emplace_back(entry.substr(0, eq), limit);
    }
    if (!c.localpart_deny.empty()) {
        auto lines = read_lines("[inbound] localpart-deny", c.localpart_deny);
        if (!lines) return lines.error();
        for (const auto& l : *lines) {
            try {
                p->deny_.emplace_back(
                    l, std::regex::ECMAScript | std::regex::icase | std::regex::optimize);
            } catch (const std::regex_error& e) {
                return Failure{"[inbound] localpart-deny: " + c.localpart_deny +
                               ": bad expression '" + l + "': " + e.what()};
            }
        }
    }
    if (!c.valid_localparts.empty()) {
        auto lines = read_lines("[inbound] valid-localparts", c.valid_localparts);
        if (!lines) return lines.error();
        p->valid_localparts_.emplace();
        for (const auto& l : *lines) p->valid_localparts_->insert(ascii_lower(l));
    }
    return std::shared_ptr<const Policy>(std::move(p));
}

bool Policy::is_local_domain(std::string_view domain) const {
    return local_domains_.count(ascii_lower(domain)) > 0;
}

bool Policy::is_relay_domain(std::string_view domain) const {
    return relay_domains_.count(ascii_lower(domain)) > 0;
}

bool Policy::is_srs_domain(std::string_view domain) const {
    return srs_ && iequals(domain, config_.srs_domain);
}

bool Policy::is_bounce_sender(std::string_view address) const {
    for (const auto& p : config_.bounce_senders) {
        if (address_matches(p, address)) return true;
    }
    return false;
}

std::optional<Policy::Rate> Policy::storm_limit_for(std::string_view mailbox) const {
    for (const auto& p : config_.storm_exempt) {
        if (address_matches(p, mailbox)) return std::nullopt;
    }
    for (const auto& [pattern, limit] : storm_limits_) {
        if (address_matches(pattern, mailbox)) return limit;
    }
    return storm_limit_;
}

bool Policy::storm_limits_used() const {
    if (storm_limit_) return true;
    for (const auto& entry : storm_limits_) {
        if (entry.second) return true;
    }
    return false;
}

std::optional<std::string> Policy::exempt_recipient(std::string_view address) const {
    for (const auto& p : config_.exempt_recipients) {
        if (address_matches(p, address)) return p;
    }
    return std::nullopt;
}

std::optional<std::string> Policy::batv_exempt_sender(std::string_view address) const {
    for (const auto& p : config_.batv_exempt_senders) {
        if (address_matches(p, address)) return p;
    }
    return std::nullopt;
}

std::optional<std::string> Policy::batv_exempt_recipient_domain(std::string_view domain) const {
    for (const auto& d : config_.batv_exempt_recipient_domains) {
        if (iequals(d, domain)) return d;
    }
    return std::nullopt;
}

std::optional<std::pair<Action, std::string>> Policy::check_localpart(
    std::string_view local) const {
    std::string s(local);
    for (const auto& re : deny_) {
        if (std::regex_search(s, re))
            return std::make_pair(config_.localpart_deny_action, std::string("localpart-deny"));
    }
    if (valid_localparts_ && !valid_localparts_->count(ascii_lower(local))) {
        return std::make_pair(config_.invalid_localpart_action, std::string("invalid-localpart"));
    }
    return std::nullopt;
}

}  // namespace backstop
