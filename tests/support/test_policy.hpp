// The configuration the session, engine and fuzz tests start from: ours.example, SRS
// at fwd.ours.example, BATV, clients in 192.0.2.0/24 internal. Tests adjust it.
#pragma once

#include <memory>
#include <stdexcept>
#include <utility>

#include "backstop/base/clock.hpp"
#include "backstop/policy/config.hpp"
#include "backstop/policy/policy.hpp"
#include "backstop/policy/spf.hpp"
#include "temp_dir.hpp"

namespace backstop::testing {

// The fixed "now" of the session and engine tests: day 20779, an hour in, so the
// BATV day stamps of their tags agree.
inline constexpr UnixTime kNow = UnixTime(20779) * 86400 + 3600;

inline Config base_config(const TempDir& dir) {
    Config c;
    c.local_domains = {"ours.example"};
    c.internal_networks = "192.0.2.0/24";
    c.srs_enable = true;
    c.srs_domain = "fwd.ours.example";
    c.srs_secrets = dir.write("srs.secrets", "tops3cr3t\n");
    c.batv_enable = true;
    c.batv_keys = dir.write("batv.keys", "1 secret\n");
    return c;
}

// Policy::build that throws, so a test's setup cannot go on with a broken config.
inline std::shared_ptr<const Policy> build(const Config& c,
                                           std::shared_ptr<SpfChecker> spf = nullptr) {
    auto p = Policy::build(c, std::move(spf));
    if (!p) throw std::runtime_error(p.error().message);
    return *p;
}

// Two policies for a fuzz harness, for the life of the process: base_config's and
// the one vary makes of it. The key files stay in a directory removed at exit.
struct PolicyPair {
    std::shared_ptr<const Policy> base;
    std::shared_ptr<const Policy> varied;
};

template <class Vary>
PolicyPair fuzz_policies(const char* dir_name, Vary vary) {
    static const TempDir dir(dir_name);
    Config c = base_config(dir);
    PolicyPair out;
    out.base = build(c);
    vary(c);
    out.varied = build(c);
    return out;
}

}  // namespace backstop::testing
