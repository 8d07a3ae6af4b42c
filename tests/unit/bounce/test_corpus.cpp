// A smoke check over the shared Sisimai corpus when it is present: every message
// classifies without a crash, the 'not' messages are 'none', and the CRLF copies give
// the same answers. The quality figures are scripts/corpus-score's job.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "backstop/bounce/classify.hpp"
#include "read_file.hpp"

using namespace backstop;
namespace fs = std::filesystem;
using backstop::testing::read_file;

namespace {

fs::path corpus() {
    return fs::path(BACKSTOP_SHARED) / "corpus" / "sisimai" / "maildir";
}

}  // namespace

TEST(Corpus, NotBouncesAreNone) {
    if (!fs::exists(corpus() / "not")) GTEST_SKIP() << "no shared corpus";
    for (const auto& e : fs::directory_iterator(corpus() / "not")) {
        auto c = BounceClassifier{}.classify(read_file(e.path()), {});
        EXPECT_EQ(c.kind, MessageKind::none) << e.path();
    }
}

TEST(Corpus, EveryBounceIsRecognised) {
    if (!fs::exists(corpus() / "bsd")) GTEST_SKIP() << "no shared corpus";
    int total = 0, none = 0;
    for (const auto& e : fs::directory_iterator(corpus() / "bsd")) {
        auto c = BounceClassifier{}.classify(read_file(e.path()), {});
        ++total;
        if (c.kind == MessageKind::none) ++none;
    }
    EXPECT_GT(total, 0);
    EXPECT_LE(none, total / 50) << none << " of " << total << " bounces classified none";
}

TEST(Corpus, CrlfCopiesMatch) {
    if (!fs::exists(corpus() / "dos")) GTEST_SKIP() << "no shared corpus";
    for (const auto& e : fs::directory_iterator(corpus() / "dos")) {
        fs::path lf = corpus() / "bsd" / e.path().filename();
        if (!fs::exists(lf)) continue;
        auto a = BounceClassifier{}.classify(read_file(lf), {});
        auto b = BounceClassifier{}.classify(read_file(e.path()), {});
        EXPECT_EQ(a.kind, b.kind) << e.path();
        ASSERT_EQ(a.recipients.size(), b.recipients.size()) << e.path();
        for (std::size_t i = 0; i < a.recipients.size(); ++i) {
            EXPECT_EQ(a.recipients[i].address, b.recipients[i].address) << e.path();
            EXPECT_EQ(a.recipients[i].reason, b.recipients[i].reason) << e.path();
        }
    }
}
