// backstop normalize: strip BATV and SRS tags, for greylisters and whitelists.
#include <iostream>

#include "backstop/envelope/normalize.hpp"
#include "commands.hpp"
#include "line_io.hpp"
#include "options.hpp"

namespace backstop::cli {

int cmd_normalize(int argc, char** argv) {
    constexpr const char* kUsage =
        "backstop normalize [ADDRESS...]\n"
        "Strips BATV (prvs=, +prvs=, btv1==, msprvs1=) and SRS0/SRS1 tags and lowercases the\n"
        "domain, so the same sender gives the same key every day. With no ADDRESS, stdin lines.";
    po::options_description desc("normalize options");
    po::variables_map vm;
    std::vector<std::string> addresses;
    if (auto stop = parse_options(argc, argv, desc, kUsage, vm, addresses)) return *stop;
    return for_each_address(addresses, [](std::string_view a) -> LineAnswer {
        return {true, normalize_address(a)};
    });
}

}  // namespace backstop::cli
