#include "backstop/envelope/normalize.hpp"

#include "backstop/base/ascii.hpp"
#include "backstop/envelope/address.hpp"
#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/srs.hpp"

namespace backstop {

namespace {

// Barracuda btv1==TAG==user and SparkPost msprvs1=TAG=user: the tag is opaque
// to us, only its position matters.
bool strip_vendor_tag(std::string& local) {
    if (istarts_with(local, "btv1==")) {
        std::size_t end = local.find("==", 6);
        if (end != std::string::npos && end > 6 && end + 2 < local.size()) {
            local.erase(0, end + 2);
            return true;
        }
    }
    if (istarts_with(local, "msprvs1=")) {
        std::size_t end = local.find('=', 8);
        if (end != std::string::npos && end > 8 && end + 1 < local.size()) {
            local.erase(0, end + 1);
            return true;
        }
    }
    return false;
}

}  // namespace

std::string normalize_address(std::string_view text) {
    auto parsed = parse_address(text);
    if (!parsed || parsed->is_null() || parsed->domain.empty()) return std::string(text);
    Address a = std::move(parsed).value();
    // Tags nest (an SRS1 around an SRS0 around a prvs tag): peel until nothing
    // changes, bounded so a crafted address cannot loop.
    for (int round = 0; round < 16; ++round) {
        if (auto srs = srs_decode_unverified(a.local); srs.ok()) {
            auto inner = parse_address(*srs);
            if (inner && !inner->domain.empty()) {
                a = std::move(inner).value();
                continue;
            }
        }
        if (auto batv = parse_batv(a.str(), true); batv.ok()) {
            auto inner = parse_address(batv->original);
            if (inner) {
                a = std::move(inner).value();
                continue;
            }
        }
        if (strip_vendor_tag(a.local)) continue;
        break;
    }
    a.domain = ascii_lower(a.domain);
    return a.str();
}

}  // namespace backstop
