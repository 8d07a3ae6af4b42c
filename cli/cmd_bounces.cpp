// backstop bounces list|show|forget|export: the hard-bounce records the milter
// keeps in its state store (sqlite; the in-process store lives only in the milter).
#include <ctime>
#include <iostream>

#include "backstop/policy/config.hpp"
#include "backstop/policy/state_options.hpp"
#include "backstop/state/store.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace backstop::cli {

namespace {

constexpr const char* kUsage =
    "backstop bounces list   (--config /etc/backstop/backstop.conf | --state SPEC)\n"
    "       backstop bounces show   (--config FILE | --state SPEC) ADDRESS...\n"
    "       backstop bounces forget (--config FILE | --state SPEC) ADDRESS...\n"
    "       backstop bounces export (--config FILE | --state SPEC) --json\n"
    "Remote addresses that hard-bounced mail we sent, as recorded by backstop-milter.\n"
    "--config reads 'state', the redis-* password and TLS files and '[outbound] bounce-expiry'\n"
    "from the milter's config; --state SPEC (sqlite:/path or redis://host:port/db) shows\n"
    "records of any age.";

std::string iso(UnixTime t) {
    std::time_t tt = std::time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += char(c);
        }
    }
    return out + "\"";
}

void print_line(const BounceRecord& r) {
    std::cout << r.address << '\t' << r.count << '\t' << r.status << '\t' << r.reason << '\t'
              << iso(r.first_seen) << '\t' << iso(r.last_seen) << '\n';
}

}  // namespace

int cmd_bounces(int argc, char** argv) {
    static const char* kVerbs[] = {"list", "show", "forget", "export"};
    std::string verb = argc >= 2 ? argv[1] : "";
    bool known = false;
    for (const char* v : kVerbs) known = known || verb == v;
    if (!known) {
        bool help = verb == "--help" || verb == "-h";
        (help ? std::cout : std::cerr) << "usage: " << kUsage << "\n";
        return help ? kExitOk : kExitUsage;
    }
    std::string label = std::string(argv[0]) + " " + verb;
    argv[1] = label.data();
    po::options_description desc("bounces options");
    std::string spec, config_path;
    bool json = false;
    desc.add_options()("config", po::value(&config_path),
                       "the milter's config file (its state and bounce-expiry)")(
        "state", po::value(&spec), "the milter's state store: sqlite:/path or redis://...")(
        "json", po::bool_switch(&json), "export: JSON array");
    po::variables_map vm;
    std::vector<std::string> addresses;
    if (auto stop = parse_options(argc - 1, argv + 1, desc, kUsage, vm, addresses)) return *stop;
    StateOptions options;
    options.create = false;  // a typo must not leave an empty database behind
    if (!config_path.empty()) {
        auto cfg = parse_config(config_path, {});
        if (!cfg) {
            std::cerr << label << ": " << cfg.error().message << "\n";
            return kExitUsage;
        }
        if (spec.empty()) spec = cfg->state;
        // The milter's Redis password and TLS files too, read under the same rules.
        auto configured = state_options(*cfg);
        if (!configured) {
            std::cerr << label << ": " << configured.error().message << "\n";
            return kExitUsage;
        }
        options = *configured;
        options.create = false;
    }
    if (spec.empty()) {
        std::cerr << label << ": needs --config FILE or --state SPEC\n";
        return kExitUsage;
    }
    if (spec == "memory") {
        std::cerr
            << label
            << ": the memory store lives inside the running milter; use sqlite: to read it here\n";
        return kExitUsage;
    }
    if ((verb == "show" || verb == "forget") == addresses.empty()) {
        std::cerr << label << ": " << (addresses.empty() ? "needs ADDRESS" : "takes no address")
                  << "\n";
        return kExitUsage;
    }
    auto store = open_state(spec, options);
    if (!store) {
        std::cerr << label << ": " << store.error().message << "\n";
        return kExitUsage;
    }
    StateStore& s = **store;
    const UnixTime now = std::time(nullptr);
    if (verb == "list" || verb == "export") {
        auto all = s.bounces(now);
        if (!all) {
            std::cerr << label << ": " << all.error().message << "\n";
            return kExitFailed;
        }
        if (verb == "list" && !json) {
            for (const auto& r : *all) print_line(r);
            return kExitOk;
        }
        std::cout << "[";
        for (std::size_t i = 0; i < all->size(); ++i) {
            const auto& r = (*all)[i];
            std::cout << (i ? ",\n " : "\n ") << "{\"address\":" << json_string(r.address)
                      << ",\"count\":" << r.count << ",\"status\":" << json_string(r.status)
                      << ",\"reason\":" << json_string(r.reason)
                      << ",\"first_seen\":" << json_string(iso(r.first_seen))
                      << ",\"last_seen\":" << json_string(iso(r.last_seen)) << "}";
        }
        std::cout << (all->empty() ? "]\n" : "\n]\n");
        return kExitOk;
    }
    int rc = kExitOk;
    for (const auto& a : addresses) {
        if (verb == "show") {
            auto r = s.bounce(a, now);
            if (!r) {
                std::cerr << a << ": " << r.error().message << "\n";
                rc = kExitFailed;
            } else if (!*r) {
                std::cerr << a << ": no record\n";
                rc = kExitFailed;
            } else {
                print_line(**r);
            }
        } else {
            auto r = s.forget(a);
            if (!r || !*r) {
                std::cerr << a << ": " << (r ? "no record" : r.error().message) << "\n";
                rc = kExitFailed;
            } else {
                std::cout << a << ": forgotten\n";
            }
        }
    }
    return rc;
}

}  // namespace backstop::cli
