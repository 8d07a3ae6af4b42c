// Envelope addresses (RFC 5321 reverse-path / forward-path).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "backstop/base/result.hpp"

namespace backstop {

enum class AddressErrc {
    empty,         // nothing at all (not even <>)
    unbalanced,    // '<' without '>' or the reverse
    bad_route,     // malformed source route
    no_domain,     // no '@domain' (and not <postmaster>)
    empty_local,   // '@domain' with nothing before it
    bad_local,     // a character not allowed in an unquoted local part
    bad_quoting,   // unterminated quoted string or stray backslash
    bad_domain,    // empty label, bad character, or bad address literal
    control_char,  // NUL, CR, LF or another control byte
};
using AddressError = Error<AddressErrc>;

// RFC 5321 §4.5.3.1 limits; exceeding them is flagged, not fatal: real mail breaks them.
enum LengthViolation : unsigned {
    kLocalTooLong = 1u << 0,   // local part > 64 octets
    kDomainTooLong = 1u << 1,  // domain > 255 octets
    kPathTooLong = 1u << 2,    // whole path > 256 octets including the brackets
};

struct Address {
    std::string local;   // unquoted form: "a b"@d is stored as a b
    std::string domain;  // as given (case kept); empty only for the null path or <postmaster>
    unsigned violations = 0;

    bool is_null() const { return local.empty() && domain.empty(); }
    // local@domain with the local part quoted when it needs quoting; "" for the null path.
    std::string str() const;
    // The path as it goes into SMTP: <local@domain>, <> for the null path.
    std::string path() const { return "<" + str() + ">"; }
};

// Accepts <>, <local@domain>, bare local@domain, quoted local parts, source routes
// (stripped), UTF-8 (passed through). Splits on the last '@'. Never throws.
Result<Address, AddressError> parse_address(std::string_view text);

// How an MTA that reads envelope addresses the RFC 822 way (Postfix) takes one that
// parse_address refuses: comments and white space outside quotes dropped, quotes
// and backslash escapes undone, a source route dropped, split on the last unquoted
// '@', trailing dots of the domain dropped. "alice(x)@example.org." is
// alice@example.org, the mailbox Postfix delivers it to. Only for deciding where
// such a recipient goes: never for a tag check or for writing an address.
Result<Address, AddressError> parse_address_loose(std::string_view text);

// True when the local part can be written without quotes (dot-atom, UTF-8 allowed).
bool local_is_dot_atom(std::string_view local);

// Local part quoted if it needs it.
std::string format_local(std::string_view local);

}  // namespace backstop
