#include "plain_address.hpp"

namespace backstop {

namespace {

bool plain_local_char(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
        case '.':
        case '-':
        case '_':
        case '+':
        case '=':
        case '/':
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '?':
        case '^':
        case '`':
        case '{':
        case '|':
        case '}':
        case '~':
            return true;
        default:
            return false;
    }
}

bool plain_domain_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

}  // namespace

bool split_plain_address(std::string_view text, std::string_view& local, std::string_view& domain) {
    if (text.size() >= 2 && text.front() == '<' && text.back() == '>')
        text = text.substr(1, text.size() - 2);
    std::size_t at = text.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 >= text.size()) return false;
    for (std::size_t i = 0; i < at; ++i) {
        if (!plain_local_char(static_cast<unsigned char>(text[i]))) return false;
    }
    char prev = '.';
    for (std::size_t i = at + 1; i < text.size(); ++i) {
        char c = text[i];
        if (!plain_domain_char(static_cast<unsigned char>(c))) return false;
        if (c == '.' && prev == '.') return false;
        prev = c;
    }
    if (prev == '.') return false;
    local = text.substr(0, at);
    domain = text.substr(at + 1);
    // Length violations are flagged by the full parser.
    return at <= 64 && domain.size() <= 255;
}

}  // namespace backstop
