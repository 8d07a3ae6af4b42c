// backstop srs forward|reverse: the SRS codec over arguments or stdin lines.
#include <iostream>

#include "backstop/envelope/keyring.hpp"
#include "backstop/envelope/srs.hpp"
#include "commands.hpp"
#include "line_io.hpp"
#include "options.hpp"

namespace backstop::cli {

namespace {

constexpr const char* kUsage =
    "backstop srs forward --secrets FILE --srs-domain DOMAIN [--hash-length N] [--separator C]\n"
    "                     [--alphabet std|url] [--time EPOCH] [ADDRESS...]\n"
    "       backstop srs reverse --secrets FILE [--max-age DAYS] [--hash-minimum N] [--time EPOCH] "
    "[ADDRESS...]\n"
    "With no ADDRESS, one address per line is read from stdin and answered in order.";

}  // namespace

int cmd_srs(int argc, char** argv) {
    if (argc < 2 || (std::string(argv[1]) != "forward" && std::string(argv[1]) != "reverse")) {
        bool help = argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h");
        (help ? std::cout : std::cerr) << "usage: " << kUsage << "\n";
        return help ? kExitOk : kExitUsage;
    }
    const bool forward = std::string(argv[1]) == "forward";
    std::string label = std::string(argv[0]) + " " + argv[1];
    argv[1] = label.data();

    po::options_description desc(forward ? "srs forward options" : "srs reverse options");
    std::string secrets_file, alphabet = "std", separator = "=";
    SrsOptions o;
    desc.add_options()("secrets", po::value(&secrets_file)->required(),
                       "secrets file: one per line, the first signs, all verify (mode 0600)");
    if (forward) {
        desc.add_options()("srs-domain", po::value(&o.domain)->required(),
                           "domain of the rewritten addresses")(
            "hash-length", po::value(&o.hash_length)->default_value(4),
            "base64 characters of hash emitted")("separator",
                                                 po::value(&separator)->default_value("="),
                                                 "separator after SRS0/SRS1: = + or -")(
            "alphabet", po::value(&alphabet)->default_value("std"),
            "base64 alphabet emitted: std (+/, Mail::SRS, postsrsd 1.x) or url (-_, postsrsd >= "
            "2.2.6)");
    } else {
        desc.add_options()("max-age", po::value(&o.max_age)->default_value(21),
                           "days an SRS0 address stays valid")(
            "hash-minimum", po::value(&o.hash_minimum)->default_value(4),
            "fewest hash characters accepted");
    }
    add_time_option(desc);
    po::variables_map vm;
    std::vector<std::string> addresses;
    if (auto stop = parse_options(argc - 1, argv + 1, desc, kUsage, vm, addresses)) return *stop;

    if (separator.size() != 1) {
        std::cerr << label << ": --separator takes one character: = + or -\n";
        return kExitUsage;
    }
    o.separator = separator[0];
    if (alphabet != "std" && alphabet != "url") {
        std::cerr << label << ": --alphabet must be std or url\n";
        return kExitUsage;
    }
    o.alphabet = alphabet == "url" ? Base64Alphabet::url : Base64Alphabet::standard;
    if (forward) {
        o.hash_minimum = std::min(o.hash_minimum, o.hash_length);
    } else {
        o.domain = "reverse.invalid";  // reverse never emits our domain
        o.hash_length = 27;
    }
    if (auto why = SrsCodec::check_options(o); !why.empty()) {
        std::cerr << label << ": " << why << "\n";
        return kExitUsage;
    }
    auto secrets = load_secret_list(secrets_file);
    if (!secrets) {
        std::cerr << label << ": " << secrets.error().message << "\n";
        return kExitUsage;
    }
    SrsCodec codec(*secrets, o);
    const UnixTime now = now_from(vm);
    if (forward) {
        return for_each_address(addresses, [&](std::string_view a) -> LineAnswer {
            auto r = codec.forward(a, now);
            if (!r) return {false, r.error().message};
            return {true, r->address};
        });
    }
    return for_each_address(addresses, [&](std::string_view a) -> LineAnswer {
        auto r = codec.reverse(a, now);
        if (!r) return {false, r.error().message};
        return {true, r->address};
    });
}

}  // namespace backstop::cli
