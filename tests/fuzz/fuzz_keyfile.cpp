// libFuzzer: the key-file parsers (secrets list and BATV keys).
#include <cstdint>
#include <string_view>

#include "backstop/envelope/keyring.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    (void)backstop::parse_secret_list(in, "fuzz");
    (void)backstop::parse_batv_keys(in, "fuzz");
    return 0;
}
