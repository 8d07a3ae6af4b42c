#include "backstop/base/encoding.hpp"

namespace backstop {

namespace {

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

}  // namespace

std::size_t base64_encode_prefix(const std::uint8_t* data, std::size_t n, Base64Alphabet alphabet,
                                 char* out, std::size_t max_chars) {
    const char* table = alphabet == Base64Alphabet::url ? kUrl : kStd;
    std::size_t w = 0;
    for (std::size_t i = 0; i < n && w < max_chars; i += 3) {
        unsigned v = unsigned(data[i]) << 16;
        if (i + 1 < n) v |= unsigned(data[i + 1]) << 8;
        if (i + 2 < n) v |= data[i + 2];
        std::size_t chars = i + 2 < n ? 4 : (i + 1 < n ? 3 : 2);
        for (std::size_t k = 0; k < chars && w < max_chars; ++k)
            out[w++] = table[(v >> (18 - 6 * k)) & 63];
    }
    return w;
}

std::string base64_encode(const std::uint8_t* data, std::size_t n, Base64Alphabet alphabet) {
    std::string out((n + 2) / 3 * 4, '\0');
    std::size_t w = base64_encode_prefix(data, n, alphabet, out.data(), out.size());
    if (alphabet == Base64Alphabet::url) {
        out.resize(w);
    } else {
        for (; w < out.size(); ++w) out[w] = '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    std::string out;
    out.reserve(text.size() * 3 / 4);
    unsigned acc = 0;
    int bits = 0;
    for (char c : text) {
        int v = base64_value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | unsigned(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(char((acc >> bits) & 0xff));
        }
    }
    return out;
}

std::string hex_encode(const std::uint8_t* data, std::size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(n * 2, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        out[2 * i] = kHex[data[i] >> 4];
        out[2 * i + 1] = kHex[data[i] & 15];
    }
    return out;
}

std::string base32hex_encode(const std::uint8_t* data, std::size_t n) {
    static constexpr char kBase32Hex[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
    std::string out;
    out.reserve((n * 8 + 4) / 5);
    unsigned acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < n; ++i) {
        acc = (acc << 8) | data[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out.push_back(kBase32Hex[(acc >> bits) & 31]);
        }
        acc &= (1u << bits) - 1;  // only the bits not yet written
    }
    if (bits > 0) out.push_back(kBase32Hex[(acc << (5 - bits)) & 31]);
    return out;
}

int base32_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= '2' && c <= '7') return c - '2' + 26;
    return -1;
}

char base32_char(unsigned v) {
    return kBase32[v & 31];
}

}  // namespace backstop
