#include "backstop/envelope/address.hpp"

#include <cstring>

#include "backstop/base/ascii.hpp"

namespace backstop {

namespace {

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

// ASCII only: the C locale functions would depend on the process locale.
bool is_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 5322 atext plus '.', and any UTF-8 byte (RFC 6531).
bool is_local_char(unsigned char c) {
    if (c >= 0x80) return true;
    if (is_alnum(c)) return true;
    return std::strchr("!#$%&'*+-/=?^_`{|}~.", c) != nullptr && c != '\0';
}

bool is_domain_char(unsigned char c) {
    return c >= 0x80 || is_alnum(c) || c == '-' || c == '_';
}

AddressError err(AddressErrc code, std::string message) {
    return {code, std::move(message)};
}

// Position of the last '@' that is not inside a quoted string, or npos.
std::size_t last_unquoted_at(std::string_view s, bool& bad_quote) {
    std::size_t at = std::string_view::npos;
    bool quoted = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (quoted && c == '\\') {
            ++i;
            if (i >= s.size()) bad_quote = true;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (!quoted && c == '@') {
            at = i;
        }
    }
    if (quoted) bad_quote = true;
    return at;
}

Result<std::string, AddressError> parse_local(std::string_view raw) {
    if (raw.empty()) return err(AddressErrc::empty_local, "empty local part before '@'");
    if (raw.front() != '"') {
        for (unsigned char c : raw) {
            if (!is_local_char(c)) {
                return err(AddressErrc::bad_local, std::string("character '") + char(c) +
                                                       "' needs quoting in a local part");
            }
        }
        return std::string(raw);
    }
    std::string out;
    std::size_t i = 1;
    for (; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '\\') {
            if (++i >= raw.size())
                return err(AddressErrc::bad_quoting, "backslash at end of quoted local part");
            out.push_back(raw[i]);
        } else if (c == '"') {
            break;
        } else {
            out.push_back(c);
        }
    }
    if (i >= raw.size()) return err(AddressErrc::bad_quoting, "unterminated quoted local part");
    if (i + 1 != raw.size())
        return err(AddressErrc::bad_quoting, "text after the closing quote of the local part");
    if (out.empty()) return err(AddressErrc::empty_local, "empty quoted local part");
    return out;
}

std::string check_domain(std::string_view d) {
    if (d.empty()) return "empty domain after '@'";
    if (d.front() == '[') {
        if (d.back() != ']' || d.size() < 3) return "unterminated address literal";
        for (char c : d.substr(1, d.size() - 2)) {
            if (c == '[' || c == ']' || c == '\\' || c == ' ')
                return "bad character in address literal";
        }
        return {};
    }
    std::size_t label = 0;
    for (unsigned char c : d) {
        if (c == '.') {
            if (label == 0) return "empty label in domain";
            label = 0;
        } else if (!is_domain_char(c)) {
            return std::string("character '") + char(c) + "' not allowed in a domain";
        } else {
            ++label;
        }
    }
    if (label == 0) return "domain ends with a dot";
    return {};
}

}  // namespace

bool local_is_dot_atom(std::string_view local) {
    // RFC 5321 Dot-string: atoms joined by single dots, none at either end.
    if (local.empty() || local.front() == '.' || local.back() == '.') return false;
    if (local.find("..") != std::string_view::npos) return false;
    for (unsigned char c : local) {
        if (!is_local_char(c)) return false;
    }
    return true;
}

std::string format_local(std::string_view local) {
    if (local_is_dot_atom(local)) return std::string(local);
    std::string out = "\"";
    for (char c : local) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

std::string Address::str() const {
    if (is_null()) return {};
    if (domain.empty()) return format_local(local);
    return format_local(local) + "@" + domain;
}

Result<Address, AddressError> parse_address(std::string_view text) {
    for (unsigned char c : text) {
        if (is_control(c) && c != '\t') {
            return err(AddressErrc::control_char, "control character in address");
        }
    }
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    if (text.empty()) return err(AddressErrc::empty, "empty address");

    std::string_view inner = text;
    bool open = text.front() == '<', close = text.back() == '>';
    if (open != close || (open && text.size() < 2)) {
        return err(AddressErrc::unbalanced, "unbalanced angle brackets");
    }
    if (open) inner = text.substr(1, text.size() - 2);
    if (inner.empty()) return Address{};

    // Source route <@a,@b:user@domain>: obsolete (RFC 5321 §4.1.2), stripped.
    if (inner.front() == '@') {
        std::size_t colon = inner.find(':');
        if (colon == std::string_view::npos)
            return err(AddressErrc::bad_route, "source route without ':'");
        std::string_view route = inner.substr(0, colon);
        std::size_t pos = 0;
        while (pos < route.size()) {
            std::size_t comma = route.find(',', pos);
            std::string_view hop =
                route.substr(pos, comma == std::string_view::npos ? route.npos : comma - pos);
            if (hop.size() < 2 || hop.front() != '@' || !check_domain(hop.substr(1)).empty()) {
                return err(AddressErrc::bad_route, "malformed source route");
            }
            if (comma == std::string_view::npos) break;
            pos = comma + 1;
        }
        inner = inner.substr(colon + 1);
        if (inner.empty()) return err(AddressErrc::bad_route, "source route without a mailbox");
    }

    bool bad_quote = false;
    std::size_t at = last_unquoted_at(inner, bad_quote);
    if (bad_quote) return err(AddressErrc::bad_quoting, "unterminated quoted string");
    for (std::size_t i = 0, q = 0; i < inner.size(); ++i) {
        // Brackets outside quotes and outside a domain literal mean a broken path.
        char c = inner[i];
        if (c == '"') q ^= 1;
        if (!q && (c == '<' || c == '>'))
            return err(AddressErrc::unbalanced, "stray angle bracket");
    }

    Address a;
    if (at == std::string_view::npos) {
        // RFC 5321 §4.5.1: <postmaster> without a domain is a valid recipient.
        if (iequals(inner, "postmaster")) {
            a.local = std::string(inner);
            return a;
        }
        return err(AddressErrc::no_domain, "no @domain in address");
    }
    auto local = parse_local(inner.substr(0, at));
    if (!local) return local.error();
    std::string_view domain = inner.substr(at + 1);
    if (std::string why = check_domain(domain); !why.empty())
        return err(AddressErrc::bad_domain, why);
    a.local = std::move(local).value();
    a.domain = std::string(domain);

    std::size_t local_octets = format_local(a.local).size();
    if (local_octets > 64) a.violations |= kLocalTooLong;
    if (a.domain.size() > 255) a.violations |= kDomainTooLong;
    if (local_octets + 1 + a.domain.size() + 2 > 256) a.violations |= kPathTooLong;
    return a;
}

Result<Address, AddressError> parse_address_loose(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    if (text.size() >= 2 && text.front() == '<' && text.back() == '>')
        text = text.substr(1, text.size() - 2);
    if (!text.empty() && text.front() == '@' && text.find(':') != std::string_view::npos)
        text = text.substr(text.find(':') + 1);

    std::string out;
    std::size_t at = std::string::npos;
    bool quoted = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '\\') {  // escapes the next character, quoted or not
            if (i + 1 < text.size()) out.push_back(text[++i]);
        } else if (quoted) {
            if (c == '"')
                quoted = false;
            else
                out.push_back(c);
        } else if (c == '"') {
            quoted = true;
        } else if (c == '[' && !out.empty() && out.back() == '@') {  // a domain literal, as it is
            std::size_t end = text.find(']', i);
            if (end == std::string_view::npos) end = text.size() - 1;
            out.append(text.substr(i, end - i + 1));
            i = end;
        } else if (c == '(') {  // a comment, which may nest
            int depth = 1;
            while (depth > 0 && ++i < text.size()) {
                if (text[i] == '\\')
                    ++i;
                else if (text[i] == '(')
                    ++depth;
                else if (text[i] == ')')
                    --depth;
            }
        } else if (c != ' ' && c != '\t' && c != '<' && c != '>') {
            if (c == '@') at = out.size();
            out.push_back(c);
        }
    }
    if (at == std::string::npos) return err(AddressErrc::no_domain, "no @domain in address");
    Address a;
    a.local = out.substr(0, at);
    a.domain = out.substr(at + 1);
    while (!a.domain.empty() && a.domain.back() == '.') a.domain.pop_back();
    if (a.local.empty()) return err(AddressErrc::empty_local, "empty local part before '@'");
    if (a.domain.empty()) return err(AddressErrc::bad_domain, "empty domain after '@'");
    return a;
}

}  // namespace backstop
