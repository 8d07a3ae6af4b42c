// backstop verp encode|decode.
#include <iostream>

#include "backstop/envelope/verp.hpp"
#include "commands.hpp"
#include "line_io.hpp"
#include "options.hpp"

namespace backstop::cli {

namespace {

constexpr const char* kUsage =
    "backstop verp encode --prefix ADDRESS [--delimiters +=] RECIPIENT...\n"
    "       backstop verp decode [--delimiters +=] ADDRESS...\n"
    "Prefix owner@origin gives owner+user=domain@origin (Postfix XVERP); the qmail\n"
    "form prefix-@host-@[] gives prefix-user=domain@host. With no address, stdin lines.";

}  // namespace

int cmd_verp(int argc, char** argv) {
    if (argc < 2 || (std::string(argv[1]) != "encode" && std::string(argv[1]) != "decode")) {
        bool help = argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h");
        (help ? std::cout : std::cerr) << "usage: " << kUsage << "\n";
        return help ? kExitOk : kExitUsage;
    }
    const bool encode = std::string(argv[1]) == "encode";
    std::string label = std::string(argv[0]) + " " + argv[1];
    argv[1] = label.data();

    po::options_description desc(encode ? "verp encode options" : "verp decode options");
    std::string prefix, delimiters = "+=";
    if (encode)
        desc.add_options()("prefix", po::value(&prefix)->required(),
                           "owner@origin or prefix-@host-@[]");
    desc.add_options()("delimiters", po::value(&delimiters)->default_value("+="),
                       "separator and '@' stand-in, as Postfix's default_verp_delimiters");
    po::variables_map vm;
    std::vector<std::string> addresses;
    if (auto stop = parse_options(argc - 1, argv + 1, desc, kUsage, vm, addresses)) return *stop;
    auto d = parse_verp_delimiters(delimiters);
    if (!d) {
        std::cerr << label << ": --delimiters: " << d.error().message << "\n";
        return kExitUsage;
    }
    if (encode) {
        return for_each_address(addresses, [&](std::string_view r) -> LineAnswer {
            auto out = verp_encode(prefix, r, *d);
            if (!out) return {false, out.error().message};
            return {true, *out};
        });
    }
    return for_each_address(addresses, [&](std::string_view a) -> LineAnswer {
        auto out = verp_decode(a, *d);
        if (!out) return {false, out.error().message};
        return {true, *out};
    });
}

}  // namespace backstop::cli
