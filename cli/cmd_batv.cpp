// backstop batv sign|verify: Exim-compatible prvs tags over arguments or stdin lines.
#include <iostream>

#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/keyring.hpp"
#include "commands.hpp"
#include "line_io.hpp"
#include "options.hpp"

namespace backstop::cli {

namespace {

constexpr const char* kUsage =
    "backstop batv sign   --keys FILE [--lifetime DAYS] [--time EPOCH] [ADDRESS...]\n"
    "       backstop batv verify --keys FILE [--lifetime DAYS] [--subaddress] [--time EPOCH] "
    "[ADDRESS...]\n"
    "Keys file: '<digit> <secret>' per line, the first line signs. verify prints the\n"
    "untagged address. With no ADDRESS, one address per line is read from stdin.";

}  // namespace

int cmd_batv(int argc, char** argv) {
    if (argc < 2 || (std::string(argv[1]) != "sign" && std::string(argv[1]) != "verify")) {
        bool help = argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h");
        (help ? std::cout : std::cerr) << "usage: " << kUsage << "\n";
        return help ? kExitOk : kExitUsage;
    }
    const bool sign = std::string(argv[1]) == "sign";
    std::string label = std::string(argv[0]) + " " + argv[1];
    argv[1] = label.data();

    po::options_description desc(sign ? "batv sign options" : "batv verify options");
    std::string keys_file;
    BatvOptions o;
    desc.add_options()("keys", po::value(&keys_file)->required(), "BATV keys file (mode 0600)")(
        "lifetime", po::value(&o.lifetime)->default_value(7), "days a tag stays valid");
    if (!sign) {
        desc.add_options()("subaddress", po::bool_switch(&o.accept_subaddress),
                           "also accept the local+prvs=TAG@domain form");
    }
    add_time_option(desc);
    po::variables_map vm;
    std::vector<std::string> addresses;
    if (auto stop = parse_options(argc - 1, argv + 1, desc, kUsage, vm, addresses)) return *stop;
    if (o.lifetime < 1 || o.lifetime > 999) {
        std::cerr << label << ": --lifetime must be 1 to 999 days\n";
        return kExitUsage;
    }
    auto keys = load_batv_keys(keys_file);
    if (!keys) {
        std::cerr << label << ": " << keys.error().message << "\n";
        return kExitUsage;
    }
    BatvSigner signer(*keys, o);
    const UnixTime now = now_from(vm);
    if (sign) {
        return for_each_address(addresses, [&](std::string_view a) -> LineAnswer {
            auto r = signer.sign(a, now);
            if (!r) return {false, r.error().message};
            return {true, *r};
        });
    }
    return for_each_address(addresses, [&](std::string_view a) -> LineAnswer {
        BatvVerdict v = signer.verify(a, now);
        if (v.status != BatvStatus::valid)
            return {false, std::string(to_string(v.status)) + ": " + v.message};
        return {true, v.original};
    });
}

}  // namespace backstop::cli
