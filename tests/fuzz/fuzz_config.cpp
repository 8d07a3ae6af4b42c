// libFuzzer: the configuration file parser on arbitrary text.
#include <cstdint>
#include <string>

#include "backstop/policy/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    auto c = backstop::parse_config_text(text, "fuzz.conf", {});
    if (!c && c.error().message.empty()) __builtin_trap();
    return 0;
}
