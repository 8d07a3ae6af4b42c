// backstop watermark sign: print the watermark header for one outgoing message.
#include <boost/program_options.hpp>

#include <iostream>
#include <string>

#include "backstop/clock.hpp"
#include "backstop/keyring.hpp"
#include "backstop/watermark.hpp"
#include "commands.hpp"

namespace po = boost::program_options;

namespace backstop::cli {

int cmd_watermark(int argc, char** argv) {
    po::options_description opts(
        "usage: backstop watermark sign --keys FILE --sender ADDR --message-id ID [options]");
    opts.add_options()("help,h", "this text")("keys", po::value<std::string>(),
                                              "key file (first line signs)")(
        "sender", po::value<std::string>(), "envelope sender")(
        "message-id", po::value<std::string>(), "the message's Message-ID, as written")(
        "lifetime", po::value<int>()->default_value(14), "days the mark stays valid")(
        "header", po::value<std::string>(), "print 'Name: value' with this header name")(
        "time", po::value<std::int64_t>(), "now, as epoch seconds (tests)");
    po::options_description hidden;
    hidden.add_options()("action", po::value<std::string>());
    po::options_description all;
    all.add(opts).add(hidden);
    po::positional_options_description pos;
    pos.add("action", 1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << argv[0] << ": " << e.what() << "\n" << opts;
        return kExitUsage;
    }
    if (vm.count("help")) {
        std::cout << opts;
        return kExitOk;
    }
    if (!vm.count("action") || vm["action"].as<std::string>() != "sign") {
        std::cerr << argv[0] << ": expected 'sign'\n" << opts;
        return kExitUsage;
    }
    if (!vm.count("keys") || !vm.count("sender") || !vm.count("message-id")) {
        std::cerr << argv[0] << ": --keys, --sender and --message-id are required\n" << opts;
        return kExitUsage;
    }
    int days = vm["lifetime"].as<int>();
    if (days <= 0) {
        std::cerr << argv[0] << ": --lifetime must be at least 1 day\n";
        return kExitUsage;
    }
    auto keys = load_secret_list(vm["keys"].as<std::string>());
    if (!keys) {
        std::cerr << argv[0] << ": " << keys.error().message << "\n";
        return kExitUsage;
    }
    WatermarkConfig config;
    config.lifetime = static_cast<UnixTime>(days) * 86400;
    if (vm.count("header")) config.header_name = vm["header"].as<std::string>();
    Watermark watermark(keys.value(), config);
    UnixTime now = vm.count("time") ? vm["time"].as<std::int64_t>() : SystemClock().now();
    std::string value =
        watermark.sign(vm["sender"].as<std::string>(), vm["message-id"].as<std::string>(), now);
    if (vm.count("header"))
        std::cout << config.header_name << ": " << value << "\n";
    else
        std::cout << value << "\n";
    return kExitOk;
}

}  // namespace backstop::cli
