// libFuzzer harness for the MIME reader and its decoders.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backstop/bounce/dsn.hpp"
#include "backstop/bounce/mime.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    backstop::MimeLimits limits;
    limits.max_bytes = 64 * 1024;
    auto m = backstop::parse_mime(in, limits);
    (void)m;
    (void)backstop::decode_header_words(in.substr(0, 4096));
    (void)backstop::decode_quoted_printable(in);
    (void)backstop::decode_base64_lenient(in);
    (void)backstop::parse_content_type(in.substr(0, 4096));
    (void)backstop::parse_delivery_status(in);
    return 0;
}
