// The milter protocol codec (milter/native/protocol.hpp): packet framing, the decoders of
// the MTA's commands and the exact bytes of our replies.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine_support.hpp"
#include "protocol.hpp"

namespace {

namespace proto = backstop::milter::proto;
using backstop::engine_test::packet;
using backstop::engine_test::u32;

struct Got {
    char command;
    std::string data;
    bool operator==(const Got&) const = default;
};

// Every complete packet the reader has now (copied: the views die at append).
std::vector<Got> drain(proto::PacketReader& r) {
    std::vector<Got> out;
    while (auto p = r.next()) out.push_back({p->command, std::string(p->data)});
    return out;
}

// A string literal with its embedded NULs (not its terminating one).
template <std::size_t N>
std::string S(const char (&s)[N]) {
    return std::string(s, N - 1);
}

std::string bytes(std::initializer_list<int> list) {
    std::string s;
    for (int b : list) s.push_back(char(b));
    return s;
}

const std::vector<Got> kStreamPackets = {
    {'O', u32(6) + u32(0x1ff) + u32(0x1fffff)},
    {'D', S("C\0j\0mx.ours.example\0")},
    {'C', S("client.example\0"
            "4\x9c\x40"
            "192.0.2.10\0")},
    {'M', S("<a@b.example>\0SIZE=10\0")},
    {'A', ""},
    {'B', std::string(3000, 'x')},
    {'Q', ""},
};

std::string stream() {
    std::string s;
    for (const auto& p : kStreamPackets) s += packet(p.command, p.data);
    return s;
}

TEST(MilterProtocol, ReaderTakesSeveralPacketsFromOneAppend) {
    proto::PacketReader r;
    r.append(stream());
    EXPECT_EQ(drain(r), kStreamPackets);
    EXPECT_EQ(r.pending(), 0u);
    EXPECT_TRUE(r.error().empty());
}

TEST(MilterProtocol, ReaderReassemblesPacketsSplitAnywhere) {
    const std::string s = stream();
    // Two appends, split at every offset.
    for (std::size_t cut = 0; cut <= s.size(); ++cut) {
        proto::PacketReader r;
        r.append(s.substr(0, cut));
        auto got = drain(r);
        r.append(s.substr(cut));
        auto rest = drain(r);
        got.insert(got.end(), rest.begin(), rest.end());
        ASSERT_EQ(got, kStreamPackets) << "cut at " << cut;
        ASSERT_TRUE(r.error().empty());
    }
    // One byte at a time, and in uneven chunks.
    for (std::size_t step : {1u, 3u, 7u, 4096u}) {
        proto::PacketReader r;
        std::vector<Got> got;
        for (std::size_t at = 0; at < s.size(); at += step) {
            r.append(s.substr(at, step));
            auto more = drain(r);
            got.insert(got.end(), more.begin(), more.end());
        }
        EXPECT_EQ(got, kStreamPackets) << "step " << step;
        EXPECT_EQ(r.pending(), 0u);
    }
}

TEST(MilterProtocol, ReaderWaitsForAWholePacket) {
    proto::PacketReader r;
    r.append(bytes({0, 0}));
    EXPECT_FALSE(r.next());
    r.append(bytes({0, 4, 'M', 'a'}));
    EXPECT_FALSE(r.next());
    EXPECT_EQ(r.pending(), 6u);
    r.append(bytes({0, 'b'}));
    auto p = r.next();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->command, 'M');
    EXPECT_EQ(p->data, S("a\0b"));
    EXPECT_EQ(r.pending(), 0u);
    EXPECT_TRUE(r.error().empty());
}

TEST(MilterProtocol, ReaderRefusesLengthZero) {
    proto::PacketReader r;
    r.append(packet('c') + bytes({0, 0, 0, 0, 'x'}));
    ASSERT_TRUE(r.next());  // the packet before the bad one is still good
    EXPECT_FALSE(r.next());
    EXPECT_NE(r.error().find("packet length 0"), std::string::npos) << r.error();
    // Broken for good: more bytes do not bring it back.
    r.append(packet('c'));
    EXPECT_FALSE(r.next());
    EXPECT_FALSE(r.error().empty());
}

TEST(MilterProtocol, ReaderRefusesLengthAboveMax) {
    for (std::uint32_t len : {proto::kMaxPacket + 1, 0x7fffffffu, 0xffffffffu}) {
        proto::PacketReader r;
        r.append(u32(len) + "B");  // refused from the header alone, nothing buffered
        EXPECT_FALSE(r.next());
        EXPECT_NE(r.error().find("packet length " + std::to_string(len)), std::string::npos)
            << r.error();
        EXPECT_NE(r.error().find(std::to_string(proto::kMaxPacket)), std::string::npos);
    }
}

TEST(MilterProtocol, ReaderTakesAPacketOfExactlyMaxLength) {
    const std::string data(proto::kMaxPacket - 1, 'z');  // plus the command byte
    const std::string p = packet('B', data);
    ASSERT_EQ(p.size(), 4 + std::size_t(proto::kMaxPacket));
    proto::PacketReader r;
    r.append(p.substr(0, p.size() - 1));
    EXPECT_FALSE(r.next());
    EXPECT_TRUE(r.error().empty());
    r.append(p.substr(p.size() - 1) + packet('E'));
    auto got = drain(r);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].command, 'B');
    EXPECT_EQ(got[0].data, data);
    EXPECT_EQ(got[1].command, 'E');
    EXPECT_TRUE(r.error().empty());
}

TEST(MilterProtocol, ParseOffer) {
    auto o = proto::parse_offer(u32(6) + u32(0x1ff) + u32(0x1fffff));
    ASSERT_TRUE(o);
    EXPECT_EQ(o->version, 6u);
    EXPECT_EQ(o->actions, 0x1ffu);
    EXPECT_EQ(o->steps, 0x1fffffu);
    // Bytes after the three words are ignored.
    auto longer = proto::parse_offer(u32(2) + u32(0x3) + u32(0x7f) + "xx");
    ASSERT_TRUE(longer);
    EXPECT_EQ(longer->version, 2u);
    EXPECT_EQ(longer->actions, 3u);
    EXPECT_EQ(longer->steps, 0x7fu);
    EXPECT_FALSE(proto::parse_offer(""));
    EXPECT_FALSE(proto::parse_offer((u32(6) + u32(0x1ff) + u32(0x1fffff)).substr(0, 11)));
}

TEST(MilterProtocol, ParseConnectIpv4) {
    auto c =
        proto::parse_connect(S("mx.remote.example\0"
                               "4\x1f\x90"
                               "198.51.100.7\0"));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->hostname, "mx.remote.example");
    EXPECT_EQ(c->family, '4');
    EXPECT_EQ(c->port, 8080);
    EXPECT_EQ(c->address, "198.51.100.7");
}

TEST(MilterProtocol, ParseConnectIpv6WithAndWithoutPrefix) {
    using backstop::engine_test::connect_data;
    for (std::string addr : {"IPv6:2001:db8::25", "ipv6:2001:db8::25", "2001:db8::25"}) {
        auto c = proto::parse_connect(connect_data("[2001:db8::25]", '6', 0xfffe, addr));
        ASSERT_TRUE(c) << addr;
        EXPECT_EQ(c->hostname, "[2001:db8::25]");
        EXPECT_EQ(c->family, '6');
        EXPECT_EQ(c->port, 0xfffe);
        EXPECT_EQ(c->address, "2001:db8::25") << addr;
    }
    // The prefix alone leaves an empty address; a longer word is not the prefix.
    EXPECT_EQ(proto::parse_connect(connect_data("h", '6', 1, "IPv6:"))->address, "");
    EXPECT_EQ(proto::parse_connect(connect_data("h", '6', 1, "IPv6"))->address, "IPv6");
}

TEST(MilterProtocol, ParseConnectUnixAndUnknown) {
    using backstop::engine_test::connect_data;
    auto l = proto::parse_connect(connect_data("localhost", 'L', 0, "/var/run/sock"));
    ASSERT_TRUE(l);
    EXPECT_EQ(l->hostname, "localhost");
    EXPECT_EQ(l->family, 'L');
    EXPECT_EQ(l->address, "");  // a socket path is no client address
    auto u = proto::parse_connect(S("unknown\0U"));
    ASSERT_TRUE(u);
    EXPECT_EQ(u->hostname, "unknown");
    EXPECT_EQ(u->family, 'U');
    EXPECT_EQ(u->port, 0);
    EXPECT_EQ(u->address, "");
    // Bytes after 'U' are ignored.
    EXPECT_TRUE(proto::parse_connect(S("h\0Ujunk")));
}

TEST(MilterProtocol, ParseConnectMalformed) {
    for (std::string bad : {
             std::string(),        // nothing
             std::string("host"),  // host name without its NUL
             S("host\0"),          // no family
             S("host\0X\0\x19"),   // unknown family
             S("host\0"
               "4"),  // no port
             S("host\0"
               "4\x01"),  // half a port
             S("host\0"
               "6\x01"),
             S("host\0L"),
         }) {
        EXPECT_FALSE(proto::parse_connect(bad)) << testing::PrintToString(bad);
    }
}

TEST(MilterProtocol, SplitStrings) {
    using V = std::vector<std::string_view>;
    EXPECT_EQ(proto::split_strings(S("a\0b\0")), (V{"a", "b"}));
    // A missing final NUL still ends the last string.
    EXPECT_EQ(proto::split_strings(S("<a@b>\0SIZE=1")), (V{"<a@b>", "SIZE=1"}));
    EXPECT_EQ(proto::split_strings("only"), (V{"only"}));
    EXPECT_EQ(proto::split_strings(""), V{});
    EXPECT_EQ(proto::split_strings(S("\0")), (V{""}));
    EXPECT_EQ(proto::split_strings(S("a\0\0")), (V{"a", ""}));
}

TEST(MilterProtocol, AppendPacket) {
    std::string out = "prev";
    proto::append_packet(out, 'c');
    EXPECT_EQ(out, "prev" + bytes({0, 0, 0, 1, 'c'}));
    out.clear();
    proto::append_packet(out, 'e', S("<a@b>\0"));
    EXPECT_EQ(out, bytes({0, 0, 0, 7, 'e', '<', 'a', '@', 'b', '>', 0}));
    out.clear();
    proto::append_packet(out, 'B', std::string(300, 'x'));
    EXPECT_EQ(out.substr(0, 5), bytes({0, 0, 1, 45, 'B'}));
    EXPECT_EQ(out.size(), 305u);
}

TEST(MilterProtocol, AppendReplyCode) {
    std::string out;
    proto::append_reply_code(out, "550", "5.7.1", "no thanks");
    EXPECT_EQ(out, bytes({0, 0, 0, 21, 'y'}) + S("550 5.7.1 no thanks\0"));
    out.clear();
    proto::append_reply_code(out, "451", "", "");
    EXPECT_EQ(out, bytes({0, 0, 0, 5, 'y', '4', '5', '1', 0}));
    out.clear();
    proto::append_reply_code(out, "451", "4.3.0", "");
    EXPECT_EQ(out, bytes({0, 0, 0, 11, 'y'}) + S("451 4.3.0\0"));
}

TEST(MilterProtocol, AppendChangeHeader) {
    std::string out;
    proto::append_change_header(out, 2, "X-Backstop-Result", "");
    EXPECT_EQ(out, bytes({0, 0, 0, 24, 'm', 0, 0, 0, 2}) + S("X-Backstop-Result\0\0"));
    out.clear();
    proto::append_change_header(out, 0x01020304, "A", "v");
    EXPECT_EQ(out, bytes({0, 0, 0, 9, 'm', 1, 2, 3, 4, 'A', 0, 'v', 0}));
}

TEST(MilterProtocol, AppendStringsPacket) {
    std::string out;
    proto::append_strings_packet(out, 'h', {"X-Name", "value"});
    EXPECT_EQ(out, bytes({0, 0, 0, 14, 'h'}) + S("X-Name\0value\0"));
    out.clear();
    proto::append_strings_packet(out, '+', {"<a@b>"});
    EXPECT_EQ(out, bytes({0, 0, 0, 7, '+'}) + S("<a@b>\0"));
}

TEST(MilterProtocol, AppendAgreementWithoutSymbolLists) {
    proto::Agreement a;
    a.version = 6;
    a.actions = 0x15d;
    a.steps = 0xc1382;
    std::string out;
    proto::append_agreement(out, a);
    EXPECT_EQ(out, bytes({0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 1, 0x5d, 0, 0x0c, 0x13, 0x82}));
}

TEST(MilterProtocol, AppendAgreementWithSymbolLists) {
    proto::Agreement a;
    a.version = 6;
    a.actions = 0x100;
    a.steps = 0;
    a.symbols = {{proto::Stage::connect, ""},
                 {proto::Stage::mail, "{auth_authen}"},
                 {proto::Stage::eom, "i"}};
    std::string out;
    proto::append_agreement(out, a);
    const std::string data = u32(6) + u32(0x100) + u32(0) + u32(0) + std::string(1, '\0') + u32(2) +
                             S("{auth_authen}\0") + u32(5) + S("i\0");
    EXPECT_EQ(out, u32(std::uint32_t(data.size() + 1)) + "O" + data);
    EXPECT_EQ(data.size(), 12u + 5u + 18u + 6u);
}

}  // namespace
