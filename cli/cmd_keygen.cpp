// backstop keygen: a random secret for the SRS secrets, BATV keys or watermark keys file.
#include <openssl/rand.h>

#include <iostream>
#include <vector>

#include "backstop/base/encoding.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace backstop::cli {

int cmd_keygen(int argc, char** argv) {
    constexpr const char* kUsage =
        "backstop keygen [--bytes N] [--batv-key K]\n"
        "Prints one random secret (base64). With --batv-key, as a BATV keys file line 'K secret'.\n"
        "Example: umask 077; backstop keygen > /etc/backstop/srs.secrets";
    po::options_description desc("keygen options");
    int bytes = 24;
    int batv_key = -1;
    desc.add_options()("bytes", po::value(&bytes)->default_value(24), "random bytes (16 to 256)")(
        "batv-key", po::value(&batv_key), "print as a BATV key line with this key number (0-9)");
    po::variables_map vm;
    std::vector<std::string> extra;
    if (auto stop = parse_options(argc, argv, desc, kUsage, vm, extra)) return *stop;
    if (!extra.empty() || bytes < 16 || bytes > 256 ||
        (vm.count("batv-key") && (batv_key < 0 || batv_key > 9))) {
        std::cerr << argv[0] << ": usage: " << kUsage << "\n";
        return kExitUsage;
    }
    std::vector<std::uint8_t> buf(static_cast<std::size_t>(bytes));
    if (RAND_bytes(buf.data(), bytes) != 1) {
        std::cerr << argv[0] << ": OpenSSL could not produce random bytes\n";
        return kExitUsage;
    }
    std::string secret = base64_encode(buf.data(), buf.size(), Base64Alphabet::url);
    if (batv_key >= 0) std::cout << batv_key << ' ';
    std::cout << secret << "\n";
    return kExitOk;
}

}  // namespace backstop::cli
