// Many short phrases searched in one pass: a bit map of the (lowercased) first two
// bytes of every phrase skips the positions where none starts, and a table keyed by
// a hash of those two bytes lists the phrases that can start there. Matching hundreds of
// bounce phrases this way costs one walk over the text instead of one per phrase.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace backstop::detail {

class PhraseSet {
  public:
    // Phrases are lowercase ASCII-compatible and at least two bytes long; 'id' orders
    // them (smaller wins in best()).
    void add(int id, std::string_view phrase);
    void build();

    // The smallest id of any phrase in text (ASCII case-insensitive), or -1.
    int best(std::string_view text) const;
    // Where the earliest phrase starts (npos if none); its id in *id.
    std::size_t first_position(std::string_view text, int* id = nullptr) const;

  private:
    bool match_at(std::string_view text, std::size_t at, std::uint32_t phrase) const;
    std::vector<std::string> phrases_;
    std::vector<int> ids_;
    std::vector<std::uint32_t> quad_;   // each phrase's lowercased first four bytes...
    std::vector<std::uint32_t> mask_;   // ...and which of them it has (a phrase may be shorter)
    std::vector<std::uint32_t> start_;  // offsets into items_, by bucket (+1 at the end)
    std::vector<std::uint64_t> pairs_;  // bit per lowercased first-two-byte pair in use
    std::vector<std::uint32_t> items_;
};

}  // namespace backstop::detail
