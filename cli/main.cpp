// backstop: the admin CLI over the core library (SRS, BATV, VERP, normalise,
// classification, watermarks) for scripts, greylisters and debugging.
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "commands.hpp"

namespace {

struct Command {
    const char* name;
    int (*run)(int, char**);
    const char* summary;
};

constexpr Command kCommands[] = {
    {"srs", backstop::cli::cmd_srs, "SRS forward / reverse (Mail::SRS, postsrsd format)"},
    {"batv", backstop::cli::cmd_batv, "BATV prvs sign / verify (Exim format)"},
    {"verp", backstop::cli::cmd_verp, "VERP encode / decode"},
    {"normalize", backstop::cli::cmd_normalize, "strip BATV and SRS tags from addresses"},
    {"keygen", backstop::cli::cmd_keygen, "print a new random secret"},
    {"classify", backstop::cli::cmd_classify, "classify bounces and auto-replies (JSON Lines)"},
    {"watermark", backstop::cli::cmd_watermark, "sign a watermark header"},
    {"bounces", backstop::cli::cmd_bounces,
     "hard-bounce records kept by the milter (list, show, forget, export)"},
};

void usage(std::ostream& out) {
    out << "usage: backstop COMMAND [options] [ARGS...]\n\ncommands:\n";
    for (const auto& c : kCommands)
        out << "  " << c.name << std::string(12 - std::strlen(c.name), ' ') << c.summary << "\n";
    out << "\n'backstop COMMAND --help' describes each command.\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage(std::cerr);
        return backstop::cli::kExitUsage;
    }
    std::string name = argv[1];
    if (name == "--help" || name == "-h" || name == "help") {
        usage(std::cout);
        return backstop::cli::kExitOk;
    }
    if (name == "--version") {
        std::cout << "backstop 0.1.0\n";
        return backstop::cli::kExitOk;
    }
    for (const auto& c : kCommands) {
        if (name == c.name) {
            std::string label = std::string("backstop ") + c.name;
            argv[1] = label.data();
            try {
                return c.run(argc - 1, argv + 1);
            } catch (const std::exception& e) {
                std::cerr << label << ": " << e.what() << "\n";
                return backstop::cli::kExitUsage;
            }
        }
    }
    std::cerr << "backstop: unknown command '" << name << "'\n";
    usage(std::cerr);
    return backstop::cli::kExitUsage;
}
