// libFuzzer: BATV verification and tag parsing on hostile input.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backstop/envelope/batv.hpp"

namespace {

const backstop::BatvSigner& signer() {
    static const backstop::BatvSigner s(backstop::BatvKeys{{{1, "secret"}, {0, "other"}}},
                                        backstop::BatvOptions{7, true});
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    constexpr backstop::UnixTime now = 20779LL * 86400;
    auto v = signer().verify(in, now);
    if (v.status == backstop::BatvStatus::valid) {
        // A valid tag re-signed from its original verifies again.
        auto again = signer().sign(v.original, now);
        if (!again || signer().verify(*again, now).status != backstop::BatvStatus::valid)
            std::abort();
    }
    (void)signer().sign(in, now);
    return 0;
}
