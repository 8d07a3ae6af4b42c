// backstop watermark sign: print the watermark header for one outgoing message.
#include <iostream>
#include <string>
#include <vector>

#include "backstop/bounce/watermark.hpp"
#include "backstop/envelope/keyring.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace backstop::cli {

int cmd_watermark(int argc, char** argv) {
    constexpr const char* kUsage =
        "backstop watermark sign --keys FILE --sender ADDR --message-id ID [options]";
    po::options_description desc("watermark options");
    std::string keys_path, sender, message_id, header;
    int days = 14;
    desc.add_options()("keys", po::value(&keys_path)->required(), "key file (first line signs)")(
        "sender", po::value(&sender)->required(), "envelope sender")(
        "message-id", po::value(&message_id)->required(), "the message's Message-ID, as written")(
        "lifetime", po::value(&days)->default_value(14), "days the mark stays valid")(
        "header", po::value(&header), "print 'Name: value' with this header name");
    add_time_option(desc);
    po::variables_map vm;
    std::vector<std::string> words;
    if (auto stop = parse_options(argc, argv, desc, kUsage, vm, words)) return *stop;
    if (words.size() != 1 || words[0] != "sign") {
        std::cerr << argv[0] << ": expected 'sign'\nusage: " << kUsage << "\n";
        return kExitUsage;
    }
    if (days <= 0) {
        std::cerr << argv[0] << ": --lifetime must be at least 1 day\n";
        return kExitUsage;
    }
    auto keys = load_secret_list(keys_path);
    if (!keys) {
        std::cerr << argv[0] << ": " << keys.error().message << "\n";
        return kExitUsage;
    }
    WatermarkConfig config;
    config.lifetime = static_cast<UnixTime>(days) * 86400;
    if (!header.empty()) config.header_name = header;
    Watermark watermark(keys.value(), config);
    std::string value = watermark.sign(sender, message_id, now_from(vm));
    if (!header.empty())
        std::cout << config.header_name << ": " << value << "\n";
    else
        std::cout << value << "\n";
    return kExitOk;
}

}  // namespace backstop::cli
