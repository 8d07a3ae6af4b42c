#include "backstop/policy/network.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace backstop {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    std::string s(text);
    if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    if (s.rfind("IPv6:", 0) == 0) s = s.substr(5);
    IpAddress a;
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        a.bytes[10] = 0xff;
        a.bytes[11] = 0xff;
        std::memcpy(&a.bytes[12], &v4, 4);
        return a;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
        std::memcpy(a.bytes.data(), &v6, 16);
        return a;
    }
    return std::nullopt;
}

bool IpAddress::is_loopback() const {
    static const std::array<std::uint8_t, 16> kV6Loopback = {0, 0, 0, 0, 0, 0, 0, 0,
                                                             0, 0, 0, 0, 0, 0, 0, 1};
    for (std::size_t i = 0; i < 10; ++i) {
        if (bytes[i] != 0) return false;
    }
    if (bytes[10] == 0xff && bytes[11] == 0xff) return bytes[12] == 127;  // IPv4 127/8
    return bytes == kV6Loopback;
}

bool IpNetwork::contains(const IpAddress& a) const {
    int bits = prefix;
    for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
        std::uint8_t mask = bits >= 8 ? 0xff : std::uint8_t(0xff << (8 - bits));
        if ((a.bytes[i] & mask) != (base.bytes[i] & mask)) return false;
    }
    return true;
}

Result<std::vector<IpNetwork>, Failure> parse_networks(std::string_view text) {
    std::vector<IpNetwork> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find_first_of(", \t", pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view item = text.substr(pos, end - pos);
        pos = end + 1;
        if (item.empty()) continue;
        std::size_t slash = item.find('/');
        auto addr = IpAddress::parse(item.substr(0, slash));
        if (!addr) return Failure{"'" + std::string(item) + "' is not an IP address or network"};
        bool v4 = item.substr(0, slash).find(':') == std::string_view::npos;
        int max = v4 ? 32 : 128;
        int prefix = max;
        if (slash != std::string_view::npos) {
            std::string_view p = item.substr(slash + 1);
            if (p.empty() || p.size() > 3)
                return Failure{"bad prefix length in '" + std::string(item) + "'"};
            prefix = 0;
            for (char c : p) {
                if (c < '0' || c > '9')
                    return Failure{"bad prefix length in '" + std::string(item) + "'"};
                prefix = prefix * 10 + (c - '0');
            }
            if (prefix > max)
                return Failure{"prefix length over " + std::to_string(max) + " in '" +
                               std::string(item) + "'"};
        }
        out.push_back({*addr, v4 ? prefix + 96 : prefix});
    }
    return out;
}

bool in_networks(const std::vector<IpNetwork>& networks, const IpAddress& a) {
    for (const auto& n : networks) {
        if (n.contains(a)) return true;
    }
    return false;
}

}  // namespace backstop
