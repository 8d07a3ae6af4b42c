// The small encodings SRS, BATV and watermarks use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace backstop {

enum class Base64Alphabet { standard, url };

// Base64 with padding (standard) or without (url), of n bytes.
std::string base64_encode(const std::uint8_t* data, std::size_t n,
                          Base64Alphabet alphabet = Base64Alphabet::standard);
// Writes at most max_chars characters of the unpadded encoding into out; returns the count.
std::size_t base64_encode_prefix(const std::uint8_t* data, std::size_t n, Base64Alphabet alphabet,
                                 char* out, std::size_t max_chars);
// Decodes either alphabet, padding optional; nullopt on a bad character.
std::optional<std::string> base64_decode(std::string_view text);

// Lowercase hex.
std::string hex_encode(const std::uint8_t* data, std::size_t n);

// RFC 4648 section 7 base32hex (0-9A-V), upper case, without padding.
std::string base32hex_encode(const std::uint8_t* data, std::size_t n);

// RFC 4648 base32 alphabet A-Z2-7; value of one character, case-insensitive, or -1.
int base32_value(char c);
char base32_char(unsigned v);

}  // namespace backstop
