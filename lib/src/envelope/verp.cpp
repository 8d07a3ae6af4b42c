#include "backstop/envelope/verp.hpp"

#include "backstop/envelope/address.hpp"

namespace backstop {

namespace {

bool is_delimiter_char(char c) {
    return c == '+' || c == '-' || c == '=' || c == '.' || c == '_' || c == '#' || c == '%';
}

}  // namespace

Result<VerpDelimiters, Failure> parse_verp_delimiters(std::string_view text) {
    if (text.size() != 2 || !is_delimiter_char(text[0]) || !is_delimiter_char(text[1]) ||
        text[0] == text[1]) {
        return Failure{
            std::string("delimiters must be two different characters of + - = . _ # %, e.g. +=")};
    }
    return VerpDelimiters{text[0], text[1]};
}

Result<std::string, Failure> verp_encode(std::string_view prefix, std::string_view recipient,
                                         VerpDelimiters d) {
    auto r = parse_address(recipient);
    if (!r) return Failure{"recipient: " + r.error().message};
    if (r->is_null() || r->domain.empty())
        return Failure{std::string("recipient: needs local@domain")};

    std::string owner_local, origin;
    // qmail's convention: the sender "prefix-@host-@[]" asks for per-recipient VERP.
    if (prefix.size() > 4 && prefix.substr(prefix.size() - 4) == "-@[]") {
        std::string_view p = prefix.substr(0, prefix.size() - 4);
        std::size_t at = p.rfind('@');
        if (at == std::string_view::npos || at == 0 || p[at - 1] != '-' || at + 1 == p.size()) {
            return Failure{std::string("prefix: qmail form is prefix-@host-@[]")};
        }
        owner_local = std::string(p.substr(0, at - 1));
        origin = std::string(p.substr(at + 1));
        d = VerpDelimiters{'-', '='};
    } else {
        auto p = parse_address(prefix);
        if (!p) return Failure{"prefix: " + p.error().message};
        if (p->is_null() || p->domain.empty())
            return Failure{std::string("prefix: needs owner@origin")};
        owner_local = p->local;
        origin = p->domain;
    }
    std::string local = owner_local;
    local.push_back(d.separator);
    local.append(r->local).push_back(d.at);
    local.append(r->domain);
    return format_local(local) + "@" + origin;
}

Result<std::string, Failure> verp_decode(std::string_view address, VerpDelimiters d) {
    auto a = parse_address(address);
    if (!a) return Failure{a.error().message};
    if (a->is_null()) return Failure{std::string("null address")};
    std::string_view local = a->local;
    std::size_t sep = local.find(d.separator);
    if (sep == std::string_view::npos)
        return Failure{std::string("no '") + d.separator + "' in local part: not VERP"};
    std::string_view encoded = local.substr(sep + 1);
    std::size_t at = encoded.rfind(d.at);
    if (at == std::string_view::npos || at == 0 || at + 1 == encoded.size()) {
        return Failure{std::string("no user") + d.at + "domain after '" + d.separator +
                       "': not VERP"};
    }
    // Built from parts, not re-parsed: the user part may hold '@' or quotes.
    Address r{std::string(encoded.substr(0, at)), std::string(encoded.substr(at + 1)), 0};
    if (auto d = parse_address("x@" + r.domain); !d)
        return Failure{"decoded recipient: " + d.error().message};
    return r.str();
}

}  // namespace backstop
