// libFuzzer: the envelope address parser must never crash, and what it accepts
// must format to something it accepts again with the same parts. The loose reading
// must never crash either, and must agree with the strict one where that succeeds.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backstop/envelope/address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto loose = backstop::parse_address_loose(in);
    auto a = backstop::parse_address(in);
    if (!a || a->is_null()) return 0;
    if (!a->domain.empty() && a->domain.back() != '.' &&
        (!loose || loose->local != a->local || loose->domain != a->domain))
        std::abort();
    auto again = backstop::parse_address(a->path());
    if (!again || again->local != a->local || again->domain != a->domain) std::abort();
    return 0;
}
