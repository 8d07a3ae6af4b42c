// VERP: the recipient encoded into the envelope sender of list or bulk mail.
#pragma once

#include <string>
#include <string_view>

#include "backstop/base/result.hpp"

namespace backstop {

struct VerpDelimiters {
    char separator = '+';  // between prefix and encoded recipient ('-' for qmail)
    char at = '=';         // stands for the recipient's '@'
};

// Postfix XVERP: prefix owner@origin + user@domain -> owner+user=domain@origin.
// qmail: prefix "prefix-@host-@[]" -> prefix-user=domain@host (delimiters '-' and '=').
Result<std::string, Failure> verp_encode(std::string_view prefix, std::string_view recipient,
                                         VerpDelimiters delimiters = {});

// The recipient inside a VERP address: the part after the first separator, split on
// the LAST 'at' delimiter. Fails when there is no such part.
Result<std::string, Failure> verp_decode(std::string_view address, VerpDelimiters delimiters = {});

// Parses "+=" style delimiter pairs; nullopt-like failure with a message.
Result<VerpDelimiters, Failure> parse_verp_delimiters(std::string_view text);

}  // namespace backstop
