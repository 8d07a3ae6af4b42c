// libFuzzer: normalisation must terminate and be idempotent.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backstop/envelope/normalize.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::string once = backstop::normalize_address(in);
    (void)backstop::normalize_address(once);
    return 0;
}
