// postsrsd 2's aliases for senders too long to embed in an SRS0 local part: the
// alias of a sender is base32hex (RFC 4648 section 7) of SHA-1 over the sender's
// bytes as given, at the pseudo-domain "1"; the alias is what gets SRS-forwarded
// (SRS0=HHHH=TT=1=ALIAS@srs-domain) and a store maps it back to the sender.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace backstop {

// "177RE26INPKI1O95KN4J23EVADPI3JDD@1": 32 characters of upper-case base32hex, "@1".
std::string srs_alias(std::string_view sender);

// The store key of an address an SRS address reversed to, when it is an alias
// (domain "1"): its local part upper-cased, as postsrsd 2 looks it up (an MTA or a
// remote host may have changed its case). nullopt for any other address.
std::optional<std::string> srs_alias_key(std::string_view reversed);

}  // namespace backstop
