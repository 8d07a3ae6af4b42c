// Fast path for the common envelope address: local@domain or <local@domain> with
// no quoting, routes or odd characters. Anything else goes to parse_address().
#pragma once

#include <string_view>

namespace backstop {

// True and the two views set when text is a plain address; false otherwise
// (not an error: the caller then runs the full parser).
bool split_plain_address(std::string_view text, std::string_view& local, std::string_view& domain);

}  // namespace backstop
