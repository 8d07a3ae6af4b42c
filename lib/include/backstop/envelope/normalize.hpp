// Normalisation: strip the tags a greylister or whitelist should not see, so the
// same sender maps to the same key every day.
#pragma once

#include <string>
#include <string_view>

namespace backstop {

// Removes BATV (prvs= both orders, +prvs=, btv1==TAG==, msprvs1=TAG=) and SRS0/SRS1
// (decoded without a key), repeatedly. The domain is lowercased. Input that is not
// an address comes back unchanged.
std::string normalize_address(std::string_view address);

}  // namespace backstop
