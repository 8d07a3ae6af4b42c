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
    std::vector<std::uint16_t> pair(phrases_.size());
    quad_.resize(phrases_.size());
    mask_.resize(phrases_.size());
    for (std::uint32_t i = 0; i < phrases_.size(); ++i) {
        const std::string& p = phrases_[i];
        pair[i] = static_cast<std::uint16_t>(pair_of(p[0], p[1]));
        quad_[i] = 0;
        mask_[i] = 0;
        for (std::size_t j = 0; j < 4 && j < p.size(); ++j) {
            quad_[i] |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[j]))
                        << (24 - 8 * j);
            mask_[i] |= 0xffu << (24 - 8 * j);
        }
    }
    for (std::uint32_t i : order) items_[fill[bucket_of(pair[i])]++] = i;
}

// The lowercased bytes at..at+3 of text, big-endian, zero past its end.
inline std::uint32_t quad_at(std::string_view text, std::size_t at, std::uint32_t pair) {
    std::uint32_t q = pair << 16;
    if (at + 2 < text.size())
        q |= static_cast<std::uint32_t>(static_cast<unsigned char>(ascii_lower(text[at + 2]))) << 8;
    if (at + 3 < text.size()) q |= static_cast<unsigned char>(ascii_lower(text[at + 3]));
    return q;
}

bool PhraseSet::match_at(std::string_view text, std::size_t at, std::uint32_t phrase) const {
    const std::string& p = phrases_[phrase];
    if (at + p.size() > text.size()) return false;
    // The first four bytes matched already (the caller compared the quad).
    for (std::size_t j = 4; j < p.size(); ++j)
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
        std::uint32_t quad = quad_at(text, i, pair);
        for (std::uint32_t it = start_[k]; it < start_[k + 1]; ++it) {
            std::uint32_t p = items_[it];
            if (best >= 0 && ids_[p] >= best) break;
            // A bucket holds other pairs too; four bytes rule most of them out.
            if ((quad & mask_[p]) == quad_[p] && match_at(text, i, p)) {
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
        std::uint32_t quad = quad_at(text, i, pair);
        for (std::uint32_t it = start_[k]; it < start_[k + 1]; ++it) {
            std::uint32_t p = items_[it];
            if ((quad & mask_[p]) == quad_[p] && match_at(text, i, p)) {
                if (id) *id = ids_[items_[it]];
                return i;
            }
        }
    }
    return std::string_view::npos;
}

}  // namespace backstop::detail
