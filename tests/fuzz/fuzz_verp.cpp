// libFuzzer: VERP decode, and encode with the input as prefix and as recipient.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backstop/envelope/verp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    (void)backstop::verp_decode(in);
    (void)backstop::verp_decode(in, {'-', '='});
    (void)backstop::verp_encode(in, "user@example.org");
    auto e = backstop::verp_encode("owner@lists.example", in);
    // Round trip, except for address literals: "[...]" may itself hold '='.
    if (e && in.find('[') == std::string_view::npos && !backstop::verp_decode(*e)) std::abort();
    return 0;
}
