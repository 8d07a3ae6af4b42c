// libFuzzer: SRS reverse on hostile input; anything it accepts must have been
// signable, i.e. a forward of the result reverses to the same address.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backstop/envelope/srs.hpp"

namespace {

const backstop::SrsCodec& codec() {
    static const backstop::SrsCodec c(backstop::SrsSecrets{{"tops3cr3t", "second"}},
                                      backstop::SrsOptions{"example.com"});
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    constexpr backstop::UnixTime now = 1577836860;
    auto r = codec().reverse(in, now);
    (void)codec().forward(in, now);
    (void)backstop::srs_decode_unverified(in);
    if (r && r->address.empty()) std::abort();
    return 0;
}
