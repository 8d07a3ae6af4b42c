// PhraseSet (phrase_set.hpp).
#include "phrase_set.hpp"

#include <algorithm>
#include <cassert>

#include "mime_text.hpp"

namespace backstop::detail {

namespace {
inline std::uint32_t key(char a, char b) {
    return (static_cast<std::uint32_t>(static_cast<unsigned char>(ascii_lower(a))) << 8) |
           static_cast<unsigned char>(ascii_lower(b));
}
}  // namespace

void PhraseSet::add(int id, std::string_view phrase) {
    assert(phrase.size() >= 2);
    phrases_.emplace_back(phrase);
    ids_.push_back(id);
}

void PhraseSet::build() {
    std::vector<std::uint32_t> counts(65537, 0);
    for (const auto& p : phrases_) ++counts[key(p[0], p[1]) + 1];
    start_.assign(65537, 0);
    for (std::size_t k = 1; k < 65537; ++k) start_[k] = start_[k - 1] + counts[k];
    items_.assign(phrases_.size(), 0);
    std::vector<std::uint32_t> fill(start_.begin(), start_.end() - 1);
    // Within a bucket, smaller ids first so best() can stop early.
    std::vector<std::uint32_t> order(phrases_.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return ids_[a] < ids_[b]; });
    for (std::uint32_t i : order) items_[fill[key(phrases_[i][0], phrases_[i][1])]++] = i;
}

bool PhraseSet::match_at(std::string_view text, std::size_t at, std::uint32_t phrase) const {
    const std::string& p = phrases_[phrase];
    if (at + p.size() > text.size()) return false;
    for (std::size_t j = 2; j < p.size(); ++j)
        if (ascii_lower(text[at + j]) != p[j]) return false;
    return true;
}

int PhraseSet::best(std::string_view text) const {
    if (text.size() < 2 || start_.empty()) return -1;
    int best = -1;
    for (std::size_t i = 0; i + 1 < text.size(); ++i) {
        std::uint32_t k = key(text[i], text[i + 1]);
        for (std::uint32_t it = start_[k]; it < start_[k + 1]; ++it) {
            std::uint32_t p = items_[it];
            if (best >= 0 && ids_[p] >= best) break;
            if (match_at(text, i, p)) {
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
    for (std::size_t i = 0; i + 1 < text.size(); ++i) {
        std::uint32_t k = key(text[i], text[i + 1]);
        for (std::uint32_t it = start_[k]; it < start_[k + 1]; ++it) {
            if (match_at(text, i, items_[it])) {
                if (id) *id = ids_[items_[it]];
                return i;
            }
        }
    }
    return std::string_view::npos;
}

}  // namespace backstop::detail
