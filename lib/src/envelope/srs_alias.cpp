#include "backstop/envelope/srs_alias.hpp"

#include "backstop/base/encoding.hpp"
#include "backstop/base/hmac.hpp"

namespace backstop {

std::string srs_alias(std::string_view sender) {
    const auto digest = sha1_digest(sender);
    return base32hex_encode(digest.data(), digest.size()) + "@1";
}

std::optional<std::string> srs_alias_key(std::string_view reversed) {
    const std::size_t at = reversed.rfind('@');
    if (at == std::string_view::npos || at == 0 || reversed.substr(at + 1) != "1")
        return std::nullopt;
    std::string key(reversed);
    for (std::size_t i = 0; i < at; ++i) {
        if (key[i] >= 'a' && key[i] <= 'z') key[i] = char(key[i] - 'a' + 'A');
    }
    return key;
}

}  // namespace backstop
