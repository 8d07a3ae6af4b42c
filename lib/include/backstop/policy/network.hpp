// IP networks for internal-networks: IPv4 and IPv6 CIDR blocks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backstop/base/result.hpp"

namespace backstop {

// An address as 16 bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d).
struct IpAddress {
    std::array<std::uint8_t, 16> bytes{};
    static std::optional<IpAddress> parse(std::string_view text);
    // 127.0.0.0/8 or ::1: a client on this host.
    bool is_loopback() const;
};

struct IpNetwork {
    IpAddress base;
    int prefix = 128;  // in IPv6 bits (IPv4 /24 is stored as /120)
    bool contains(const IpAddress& a) const;
};

// "10.0.0.0/8, 192.0.2.1, 2001:db8::/32" (comma or space separated).
Result<std::vector<IpNetwork>, Failure> parse_networks(std::string_view text);

bool in_networks(const std::vector<IpNetwork>& networks, const IpAddress& a);

}  // namespace backstop
