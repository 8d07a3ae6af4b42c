// backstop bounces list|show|forget|export: the hard-bounce records the milter
// keeps in its state store (sqlite; the in-process store lives only in the milter).
#include <ctime>
#include <iostream>

#include "backstop/state.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace backstop::cli {

namespace {

constexpr const char* kUsage =
    "backstop bounces list   --state sqlite:/var/lib/backstop/state.db\n"
    "       backstop bounces show   --state SPEC ADDRESS...\n"
    "       backstop bounces forget --state SPEC ADDRESS...\n"
    "       backstop bounces export --state SPEC --json\n"
    "Remote addresses that hard-bounced mail we sent, as recorded by backstop-milter.";

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
    std::string spec;
    bool json = false;
    desc.add_options()("state", po::value(&spec)->required(),
                       "the milter's state store, sqlite:/path")("json", po::bool_switch(&json),
                                                                 "export: JSON array");
    po::variables_map vm;
    std::vector<std::string> addresses;
    if (auto stop = parse_options(argc - 1, argv + 1, desc, kUsage, vm, addresses)) return *stop;
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
    auto store = open_state(spec);
    if (!store) {
        std::cerr << label << ": " << store.error().message << "\n";
        return kExitUsage;
    }
    StateStore& s = **store;
    if (verb == "list" || verb == "export") {
        auto all = s.bounces();
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
            auto r = s.bounce(a);
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
