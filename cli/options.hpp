// Option parsing shared by the subcommands (Boost.Program_options).
#pragma once

#include <boost/program_options.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backstop/base/clock.hpp"

namespace backstop::cli {

namespace po = boost::program_options;

// Parses argv against desc; extra words land in 'positional'. Returns an exit status
// when the command should stop (--help printed: 0; bad usage reported: 2).
std::optional<int> parse_options(int argc, char** argv, const po::options_description& desc,
                                 const std::string& usage, po::variables_map& vm,
                                 std::vector<std::string>& positional);

// --time EPOCH when given, otherwise the system clock.
UnixTime now_from(const po::variables_map& vm);

// Adds --time to desc.
void add_time_option(po::options_description& desc);

}  // namespace backstop::cli
