#include "options.hpp"

#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"

namespace backstop::cli {

std::optional<int> parse_options(int argc, char** argv, const po::options_description& desc,
                                 const std::string& usage, po::variables_map& vm,
                                 std::vector<std::string>& positional) {
    po::options_description all;
    all.add(desc);
    all.add_options()("help,h", "show this help");
    try {
        // Positional arguments are collected here and only the options go to Boost:
        // its parser removes each token from the front of a vector, quadratic in the
        // number of arguments (visible with thousands of files for classify).
        std::vector<std::string> options;
        for (int i = 1; i < argc; ++i) {
            std::string_view a = argv[i];
            if (a == "--") {
                for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
                break;
            }
            if (a.size() < 2 || a.front() != '-') {
                positional.emplace_back(a);
                continue;
            }
            options.emplace_back(a);
            // "--name value" and "-x value": the value is the next argument. Long names
            // may be abbreviated, as Boost allows.
            bool long_form = a.starts_with("--");
            if (long_form ? a.find('=') != std::string_view::npos : a.size() > 2) continue;
            const po::option_description* d = nullptr;
            try {
                d = long_form ? all.find_nothrow(std::string(a.substr(2)), true)
                              : all.find_nothrow(std::string(a.substr(1, 1)), false);
                if (!d && !long_form) d = all.find_nothrow(std::string(a), false);
            } catch (const po::ambiguous_option&) {
                // Boost's own parse below reports it, naming the option.
            }
            if (d && d->semantic()->max_tokens() > 0 && i + 1 < argc)
                options.emplace_back(argv[++i]);
        }
        po::store(po::command_line_parser(options).options(all).run(), vm);
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
