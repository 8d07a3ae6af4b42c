// libFuzzer harness for the whole classifier (text scanners, DSN fields, SES JSON,
// reasons, watermark lookup), with and without a watermark verifier and VERP.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backstop/bounce/classify.hpp"
#include "backstop/bounce/watermark.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    static const backstop::Watermark watermark(
        backstop::SecretList{{"fuzz-key"}},
        backstop::WatermarkConfig{"X-Backstop-Watermark", 86400, "ms"});
    backstop::ClassifyOptions opts;
    opts.max_bytes = 64 * 1024;
    opts.now = 1772442000;
    backstop::BounceClassifier classifier;
    auto a = classifier.classify(in, opts);
    opts.watermark = &watermark;
    opts.envelope_recipient = "bounces+user=example.org@example.com";
    auto b = classifier.classify(in, opts);
    // The verifier must not change what the message is.
    if (a.kind != b.kind) __builtin_trap();
    return 0;
}
