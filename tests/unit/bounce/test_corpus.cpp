// A smoke check over the shared corpora when they are present: every message
// classifies without a crash, the Sisimai corpus's 'not' messages are 'none', its CRLF
// copies give the same answers, and the second corpus's non-bounces are no DSN.
// The quality figures are scripts/corpus-score's job.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

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

// The second corpus (shared/corpus/more): every message classifies, and the rows
// labelled as no bounce (recipient "-") are not called a DSN.
TEST(Corpus, MoreNonBouncesAreNoDsn) {
    fs::path more = fs::path(BACKSTOP_SHARED) / "corpus" / "more";
    if (!fs::exists(more / "expected.tsv")) GTEST_SKIP() << "no second corpus";
    std::istringstream rows(read_file(more / "expected.tsv"));
    std::string line;
    int non_bounces = 0;
    std::getline(rows, line);  // header
    while (std::getline(rows, line)) {
        std::vector<std::string> col;
        std::size_t at = 0;
        for (std::size_t tab; (tab = line.find('\t', at)) != std::string::npos; at = tab + 1)
            col.push_back(line.substr(at, tab - at));
        col.push_back(line.substr(at));
        ASSERT_GE(col.size(), 3u) << line;
        auto c = BounceClassifier{}.classify(read_file(more / col[0] / col[1]), {});
        if (col[2] != "-") continue;
        ++non_bounces;
        EXPECT_NE(c.kind, MessageKind::dsn) << col[1];
    }
    EXPECT_GT(non_bounces, 0);
}
