// PhraseSet (phrase_set.hpp).
#include "phrase_set.hpp"

#include <algorithm>
#include <cassert>

#include "mime_text.hpp"

namespace backstop::detail {

namespace {

// The first two bytes of a phrase, lowercased: 16 bits.
inline std::uint32_t pair_of(char a, char b) {
    return (static_cast<std::uint32_t>(static_cast<unsigned char>(ascii_lower(a))) << 8) |
           static_cast<unsigned char>(ascii_lower(b));
}

// Buckets by a hash of that pair. 4,096 of them keep the table at 16 KB, in cache
// while matching and cheap to build at start-up (one bucket per pair made each set
// 256 KB, page-faulted in by every new process).
constexpr std::uint32_t kBuckets = 4096;
inline std::uint32_t bucket_of(std::uint32_t pair) {
    return ((pair >> 8) * 131u ^ (pair & 0xff) * 7u ^ (pair & 0xff) << 6) & (kBuckets - 1);
}

}  // namespace

void PhraseSet::add(int id, std::string_view phrase) {
    assert(phrase.size() >= 2);
    phrases_.emplace_back(phrase);
    ids_.push_back(id);
}

void PhraseSet::build() {
    pairs_.assign(65536 / 64, 0);
    std::vector<std::uint32_t> counts(kBuckets + 1, 0);
    for (const auto& p : phrases_) {
        std::uint32_t pair = pair_of(p[0], p[1]);
        pairs_[pair >> 6] |= std::uint64_t{1} << (pair & 63);
        ++counts[bucket_of(pair) + 1];
    }
    start_.assign(kBuckets + 1, 0);
    for (std::size_t k = 1; k <= kBuckets; ++k) start_[k] = start_[k - 1] + counts[k];
    items_.assign(phrases_.size(), 0);
    std::vector<std::uint32_t> fill(start_.begin(), start_.end() - 1);
    // Within a bucket, smaller ids first so best() can stop early.
    std::vector<std::uint32_t> order(phrases_.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return ids_[a] < ids_[b]; });
    pair_.resize(phrases_.size());
    for (std::uint32_t i = 0; i < phrases_.size(); ++i)
        pair_[i] = static_cast<std::uint16_t>(pair_of(phrases_[i][0], phrases_[i][1]));
    for (std::uint32_t i : order) items_[fill[bucket_of(pair_[i])]++] = i;
}

bool PhraseSet::match_at(std::string_view text, std::size_t at, std::uint32_t phrase) const {
    const std::string& p = phrases_[phrase];
    if (at + p.size() > text.size()) return false;
    // The first two bytes matched already (the caller compared the pair).
    for (std::size_t j = 2; j < p.size(); ++j)
        if (ascii_lower(text[at + j]) != p[j]) return false;
    return true;
}

int PhraseSet::best(std::string_view text) const {
    if (text.size() < 2 || start_.empty()) return -1;
    int best = -1;
    // The pair at i slides along: each byte is lowercased once.
    std::uint32_t next = static_cast<unsigned char>(ascii_lower(text[0]));
    for (std::size_t i = 0; i + 1 < text.size(); ++i) {
        std::uint32_t pair = (next << 8) | static_cast<unsigned char>(ascii_lower(text[i + 1]));
        next = pair & 0xff;
        // Most positions start no phrase: one bit in an 8 KB map says so.
        if (!((pairs_[pair >> 6] >> (pair & 63)) & 1)) continue;
        std::uint32_t k = bucket_of(pair);
        for (std::uint32_t it = start_[k]; it < start_[k + 1]; ++it) {
            std::uint32_t p = items_[it];
            if (best >= 0 && ids_[p] >= best) break;
            // A bucket holds other pairs too.
            if (pair_[p] == pair && match_at(text, i, p)) {
                best = ids_[p];
                break;
            }
        }
        if (best == 0) break;
    }
    return best;
}

std::size_t PhraseSet::first_position(std::string_view text, int* id) const {
    if (text.size() < 2 || start_.empty()) return std::string_view::npos;
    std::uint32_t next = static_cast<unsigned char>(ascii_lower(text[0]));
    for (std::size_t i = 0; i + 1 < text.size(); ++i) {
        std::uint32_t pair = (next << 8) | static_cast<unsigned char>(ascii_lower(text[i + 1]));
        next = pair & 0xff;
        if (!((pairs_[pair >> 6] >> (pair & 63)) & 1)) continue;
        std::uint32_t k = bucket_of(pair);
        for (std::uint32_t it = start_[k]; it < start_[k + 1]; ++it) {
            if (pair_[items_[it]] == pair && match_at(text, i, items_[it])) {
                if (id) *id = ids_[items_[it]];
                return i;
            }
        }
    }
    return std::string_view::npos;
}

}  // namespace backstop::detail
