// PhraseSet, the classifier's many-phrase matcher, against the plain search it replaces:
// random phrases of two to eight bytes in random mixed-case text, matches at the very
// end included (where its four-byte prefilter reads past the text).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "bounce/phrase_set.hpp"

namespace backstop::detail {
namespace {

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool at(const std::string& text, std::size_t i, const std::string& phrase) {
    if (i + phrase.size() > text.size()) return false;
    for (std::size_t j = 0; j < phrase.size(); ++j)
        if (lower(text[i + j]) != phrase[j]) return false;
    return true;
}

TEST(PhraseSet, AgreesWithPlainSearch) {
    std::mt19937 rng(20261205);
    const std::string alphabet = "abcAB c.";  // few letters: many near misses
    auto pick = [&](std::size_t n) {
        std::string s;
        for (std::size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
        return s;
    };
    for (int round = 0; round < 300; ++round) {
        PhraseSet set;
        std::vector<std::string> phrases;
        for (int id = 0; id < 12; ++id) {
            std::string p;
            for (char c : pick(2 + rng() % 7)) p += lower(c);
            phrases.push_back(p);
            set.add(id, p);
        }
        set.build();
        for (int t = 0; t < 20; ++t) {
            std::string text = pick(rng() % 40);
            // Plain answers: the smallest id found anywhere; the earliest position.
            int best = -1, first_id = -1;
            std::size_t first = std::string::npos;
            for (std::size_t i = 0; i < text.size(); ++i)
                for (int id = 0; id < 12; ++id)
                    if (at(text, i, phrases[id])) {
                        if (best < 0 || id < best) best = id;
                        if (first == std::string::npos) first = i;
                        if (first == i && first_id < 0) first_id = id;
                    }
            SCOPED_TRACE("text '" + text + "' round " + std::to_string(round));
            EXPECT_EQ(best, set.best(text));
            int id = -1;
            std::size_t pos = set.first_position(text, &id);
            EXPECT_EQ(first, pos);
            // At the earliest position, the phrase reported is one that starts there.
            if (pos != std::string::npos) {
                EXPECT_TRUE(at(text, pos, phrases[id]));
            }
        }
    }
}

TEST(PhraseSet, ShortPhrasesAtTheEnd) {
    PhraseSet set;
    set.add(1, "ok");
    set.add(2, "abc");
    set.add(0, "abcdefgh");
    set.build();
    EXPECT_EQ(1, set.best("it is OK"));
    EXPECT_EQ(2, set.best("xyzABC"));
    EXPECT_EQ(0, set.best("..ABCDEFGH"));
    EXPECT_EQ(2, set.best("..ABCDEFG"));
    EXPECT_EQ(-1, set.best("o"));
    EXPECT_EQ(6u, set.first_position("it is ok"));
}

}  // namespace
}  // namespace backstop::detail
