// libFuzzer harness for watermark and date parsing: arbitrary header values must give
// a status, never a crash, and never 'valid' for input we did not sign.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backstop/bounce/watermark.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    static const backstop::Watermark w(
        backstop::SecretList{{"k1", "k2"}},
        backstop::WatermarkConfig{"X-Backstop-Watermark", 86400, "ms"});
    std::size_t cut = in.find('\n');
    std::string_view value = in.substr(0, cut);
    std::string_view rest = cut == std::string_view::npos ? std::string_view() : in.substr(cut + 1);
    auto s = w.verify(value, rest, rest, 1772442000);
    if (s == backstop::WatermarkStatus::valid && value.find("s=") == std::string_view::npos)
        __builtin_trap();
    (void)w.verify_mailscanner(value, rest, rest, 1772442000);
    (void)backstop::parse_rfc5322_date(in);
    // Round trip: what we sign verifies.
    std::string mark = w.sign(rest.substr(0, 64), value.substr(0, 64), 1772442000);
    if (w.verify(mark, rest.substr(0, 64), value.substr(0, 64), 1772442000) !=
        backstop::WatermarkStatus::valid)
        __builtin_trap();
    return 0;
}
