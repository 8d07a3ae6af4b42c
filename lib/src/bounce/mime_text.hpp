// Byte-string helpers the MIME reader and the classifier share: case-insensitive
// substring search without allocation, hex digits, trimming. Private to lib/src/bounce.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "backstop/base/ascii.hpp"

namespace backstop::text {

// Case-insensitive search; 'needle' must already be lowercase.
inline std::size_t ifind(std::string_view hay, std::string_view needle, std::size_t from = 0) {
    if (needle.empty()) return from <= hay.size() ? from : std::string_view::npos;
    if (hay.size() < needle.size()) return std::string_view::npos;
    const char first = needle[0];
    const char first_up = (first >= 'a' && first <= 'z') ? static_cast<char>(first - 32) : first;
    for (std::size_t i = from; i + needle.size() <= hay.size(); ++i) {
        char c = hay[i];
        if (c != first && c != first_up) continue;
        std::size_t j = 1;
        while (j < needle.size() && ascii_lower(hay[i + j]) == needle[j]) ++j;
        if (j == needle.size()) return i;
    }
    return std::string_view::npos;
}

inline bool icontains(std::string_view hay, std::string_view needle) {
    return ifind(hay, needle) != std::string_view::npos;
}

constexpr int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

inline bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace backstop::text
