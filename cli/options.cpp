#include "options.hpp"

#include <iostream>

#include "commands.hpp"

namespace backstop::cli {

std::optional<int> parse_options(int argc, char** argv, const po::options_description& desc,
                                 const std::string& usage, po::variables_map& vm,
                                 std::vector<std::string>& positional) {
    po::options_description all;
    all.add(desc);
    all.add_options()("help,h", "show this help");
    po::options_description hidden;
    hidden.add_options()("arg", po::value<std::vector<std::string>>(&positional));
    po::options_description everything;
    everything.add(all).add(hidden);
    po::positional_options_description pos;
    pos.add("arg", -1);
    try {
        po::store(po::command_line_parser(argc, argv).options(everything).positional(pos).run(),
                  vm);
        // --help before notify(): required options must not stand in the way of help.
        if (vm.count("help")) {
            std::cout << "usage: " << usage << "\n\n" << all;
            return kExitOk;
        }
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << argv[0] << ": " << e.what() << "\nusage: " << usage << "\n";
        return kExitUsage;
    }
    return std::nullopt;
}

UnixTime now_from(const po::variables_map& vm) {
    if (vm.count("time")) return vm["time"].as<long long>();
    return SystemClock().now();
}

void add_time_option(po::options_description& desc) {
    desc.add_options()("time", po::value<long long>(),
                       "fix the clock at this Unix time (for reproducible output)");
}

}  // namespace backstop::cli
