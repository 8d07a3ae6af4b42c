#include "protocol.hpp"

#include <strings.h>

#include <cstring>

namespace backstop::milter::proto {

namespace {

std::uint32_t read_u32(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (std::uint32_t(u[0]) << 24) | (std::uint32_t(u[1]) << 16) | (std::uint32_t(u[2]) << 8) |
           std::uint32_t(u[3]);
}

void put_u32(std::string& out, std::uint32_t v) {
    const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    out.append(b, 4);
}

// The string up to the next NUL (or the end), and what follows that NUL.
std::string_view take_string(std::string_view& data) {
    std::size_t nul = data.find('\0');
    std::string_view s = data.substr(0, nul);
    data.remove_prefix(nul == std::string_view::npos ? data.size() : nul + 1);
    return s;
}

}  // namespace

void PacketReader::append(std::string_view bytes) {
    // Drop what was returned before, so the buffer holds at most one packet plus
    // one read's worth of bytes.
    if (start_ > 0) {
        if (start_ == buffer_.size() && buffer_.capacity() > 16384) {
            // An idle connection keeps no body-chunk-sized buffer: with hundreds of
            // connections that would be most of the daemon's memory.
            std::string().swap(buffer_);
        } else {
            buffer_.erase(0, start_);
        }
        start_ = 0;
    }
    buffer_.append(bytes);
}

std::optional<Packet> PacketReader::next() {
    if (!error_.empty()) return std::nullopt;
    const std::size_t avail = buffer_.size() - start_;
    if (avail < 4) return std::nullopt;
    const std::uint32_t len = read_u32(buffer_.data() + start_);
    if (len == 0 || len > kMaxPacket) {
        error_ = "packet length " + std::to_string(len) + " out of range (1.." +
                 std::to_string(kMaxPacket) + ")";
        return std::nullopt;
    }
    if (avail - 4 < len) return std::nullopt;
    Packet p;
    p.command = buffer_[start_ + 4];
    p.data = std::string_view(buffer_).substr(start_ + 5, len - 1);
    start_ += 4 + std::size_t(len);
    return p;
}

std::optional<Offer> parse_offer(std::string_view data) {
    if (data.size() < 12) return std::nullopt;
    return Offer{read_u32(data.data()), read_u32(data.data() + 4), read_u32(data.data() + 8)};
}

std::optional<ConnectInfo> parse_connect(std::string_view data) {
    ConnectInfo c;
    if (data.find('\0') == std::string_view::npos) return std::nullopt;
    c.hostname = std::string(take_string(data));
    if (data.empty()) return std::nullopt;
    c.family = data[0];
    data.remove_prefix(1);
    if (c.family == 'U') return c;
    if (c.family != '4' && c.family != '6' && c.family != 'L') return std::nullopt;
    if (data.size() < 2) return std::nullopt;
    c.port = std::uint16_t((std::uint16_t(static_cast<unsigned char>(data[0])) << 8) |
                           static_cast<unsigned char>(data[1]));
    data.remove_prefix(2);
    std::string_view addr = take_string(data);
    if (c.family == 'L') return c;  // a unix socket path, not an address
    if (addr.size() >= 5 && strncasecmp(addr.data(), "IPv6:", 5) == 0) addr.remove_prefix(5);
    c.address = std::string(addr);
    return c;
}

std::vector<std::string_view> split_strings(std::string_view data) {
    std::vector<std::string_view> out;
    while (!data.empty()) out.push_back(take_string(data));
    return out;
}

void append_packet(std::string& out, char code, std::string_view data) {
    put_u32(out, std::uint32_t(data.size() + 1));
    out.push_back(code);
    out.append(data);
}

void append_reply_code(std::string& out, std::string_view code, std::string_view xcode,
                       std::string_view text) {
    std::string line;
    line.reserve(code.size() + xcode.size() + text.size() + 3);
    line.append(code);
    if (!xcode.empty()) line.append(" ").append(xcode);
    if (!text.empty()) line.append(" ").append(text);
    line.push_back('\0');
    append_packet(out, reply::reply_code, line);
}

void append_change_header(std::string& out, std::uint32_t index, std::string_view name,
                          std::string_view value) {
    std::string data;
    put_u32(data, index);
    data.append(name).push_back('\0');
    data.append(value).push_back('\0');
    append_packet(out, reply::change_header, data);
}

void append_strings_packet(std::string& out, char code,
                           std::initializer_list<std::string_view> strings) {
    std::string data;
    for (std::string_view s : strings) data.append(s).push_back('\0');
    append_packet(out, code, data);
}

void append_agreement(std::string& out, const Agreement& a) {
    std::string data;
    put_u32(data, a.version);
    put_u32(data, a.actions);
    put_u32(data, a.steps);
    for (const auto& [stage, names] : a.symbols) {
        put_u32(data, std::uint32_t(stage));
        data.append(names).push_back('\0');
    }
    append_packet(out, reply::negotiate, data);
}

}  // namespace backstop::milter::proto
