// Policy: everything a Session needs to decide, built once from a Config (key files
// read, codecs keyed) and shared read-only by all connections. A reload builds a
// new Policy; connections keep the one they started with.
#pragma once

#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backstop/base/result.hpp"
#include "backstop/bounce/classify.hpp"
#include "backstop/bounce/watermark.hpp"
#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/srs.hpp"
#include "backstop/policy/config.hpp"
#include "backstop/policy/network.hpp"
#include "backstop/policy/spf.hpp"
#include "backstop/state/store.hpp"

namespace backstop {

// "user@domain", "user@*", "*@domain", "@domain", "*": ASCII case-insensitive.
bool address_matches(std::string_view pattern, std::string_view address);

class Policy {
  public:
    // Reads the key and list files the config names; errors name the key and file.
    // With [srs] spf-check, 'spf' is used when given (tests), else libspf2.
    static Result<std::shared_ptr<const Policy>, Failure> build(
        const Config& config, std::shared_ptr<SpfChecker> spf = nullptr);

    const Config& config() const { return config_; }
    const SrsCodec* srs() const { return srs_ ? &*srs_ : nullptr; }
    const BatvSigner* batv() const { return batv_ ? &*batv_ : nullptr; }
    const Watermark* watermark() const { return watermark_ ? &*watermark_ : nullptr; }
    const BounceClassifier& classifier() const { return classifier_; }
    const SpfChecker* spf() const { return spf_.get(); }

    bool is_local_domain(std::string_view domain) const;
    bool is_srs_domain(std::string_view domain) const;
    // [domains] relay: accepted here and handed to another server.
    bool is_relay_domain(std::string_view domain) const;
    bool is_internal(const IpAddress& a) const { return in_networks(networks_, a); }
    bool is_bounce_sender(std::string_view address) const;
    using Rate = std::pair<std::uint64_t, UnixTime>;  // {limit, window seconds}
    // The storm limit of one local recipient: nullopt when exempt or off. A
    // storm-limits entry that matches wins over storm-limit.
    std::optional<Rate> storm_limit_for(std::string_view mailbox) const;
    // Whether any recipient can have a storm limit at all.
    bool storm_limits_used() const;
    // The exemptions: the pattern or domain that matched, for the log; nullopt when none.
    std::optional<std::string> exempt_recipient(std::string_view address) const;
    std::optional<std::string> batv_exempt_sender(std::string_view address) const;
    std::optional<std::string> batv_exempt_recipient_domain(std::string_view domain) const;
    // Bounce to this local part: nullopt when allowed, else the action and why.
    std::optional<std::pair<Action, std::string>> check_localpart(std::string_view local) const;

  private:
    Config config_;
    std::set<std::string> local_domains_;  // lowercased
    std::set<std::string> relay_domains_;  // lowercased
    std::vector<IpNetwork> networks_;
    std::optional<SrsCodec> srs_;
    std::optional<BatvSigner> batv_;
    std::optional<Watermark> watermark_;
    BounceClassifier classifier_;
    std::shared_ptr<SpfChecker> spf_;
    std::vector<std::regex> deny_;
    std::optional<Rate> storm_limit_;
    std::vector<std::pair<std::string, std::optional<Rate>>> storm_limits_;
    std::optional<std::set<std::string>> valid_localparts_;  // lowercased
};

}  // namespace backstop
