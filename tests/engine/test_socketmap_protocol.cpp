// The socketmap codec (milter/socketmap_protocol.hpp): netstring framing of the
// requests, the NAME KEY split and the exact bytes of the replies.
#include "socketmap_protocol.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_policy.hpp"

namespace {

using namespace backstop;
using namespace backstop::milter;
using Error = NetstringReader::Error;

// Every whole netstring the reader has now (copied: the views die at append).
std::vector<std::string> drain(NetstringReader& r) {
    std::vector<std::string> out;
    while (auto d = r.next()) out.emplace_back(*d);
    return out;
}

std::vector<std::string> read_all(std::string_view bytes, Error want = Error::none) {
    NetstringReader r;
    r.append(bytes);
    auto out = drain(r);
    EXPECT_EQ(r.error(), want) << bytes;
    return out;
}

TEST(NetstringReader, WholeAndSplitNetstrings) {
    using V = std::vector<std::string>;
    EXPECT_EQ(read_all("5:hello,"), V{"hello"});
    EXPECT_EQ(read_all("0:,3:a b,"), (V{"", "a b"}));
    // Any bytes inside, ',' and ':' included.
    EXPECT_EQ(read_all(std::string("4:a\0:,,", 7)), V{std::string("a\0:,", 4)});
    // Leading zeros are digits like any other (Postfix reads them so).
    EXPECT_EQ(read_all("005:hello,"), V{"hello"});
    // Byte by byte, one netstring comes out exactly when its ',' arrives.
    const std::string stream = "5:hello,11:forward x@y,";
    NetstringReader r;
    std::vector<std::string> got;
    for (std::size_t i = 0; i < stream.size(); ++i) {
        r.append(stream.substr(i, 1));
        for (auto& d : drain(r)) got.push_back(d + "@" + std::to_string(i));
    }
    EXPECT_EQ(got, (V{"hello@7", "forward x@y@22"}));
    EXPECT_EQ(r.error(), Error::none);
    EXPECT_EQ(r.pending(), 0u);
}

TEST(NetstringReader, IncompleteIsNotAnError) {
    for (std::string_view part : {"", "1", "12", "5:", "5:hel", "5:hello"}) {
        NetstringReader r;
        r.append(part);
        EXPECT_FALSE(r.next().has_value()) << part;
        EXPECT_EQ(r.error(), Error::none) << part;
    }
}

TEST(NetstringReader, MalformedStopsTheStream) {
    for (std::string_view bad : {"x:hello,", " 5:hello,", "-5:hello,", "+5:hello,", ":hello,",
                                 "5:hello;", "5:hello!,", "5 :hello,", "0x5:hello,"}) {
        EXPECT_TRUE(read_all(bad, Error::malformed).empty()) << bad;
    }
    // What came before the bad one is returned; nothing after it ever is.
    NetstringReader r;
    r.append("1:a,x:b,1:c,");
    EXPECT_EQ(drain(r), std::vector<std::string>{"a"});
    EXPECT_EQ(r.error(), Error::malformed);
    r.append("1:d,");
    EXPECT_FALSE(r.next().has_value());
    EXPECT_STREQ(r.error_text(), "malformed netstring");
    // A length that goes on and on is junk, leading zeros or not.
    EXPECT_TRUE(read_all(std::string(21, '0'), Error::malformed).empty());
    EXPECT_TRUE(read_all(std::string(20, '0'), Error::none).empty());
}

TEST(NetstringReader, CapIs100000Bytes) {
    const std::string at_cap = "100000:" + std::string(100000, 'k') + ",";
    auto got = read_all(at_cap);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].size(), 100000u);
    // Over it: refused from the length alone, before any data arrives.
    EXPECT_TRUE(read_all("100001:", Error::too_long).empty());
    EXPECT_TRUE(read_all("99999999999999999999:", Error::too_long).empty());
    NetstringReader r;
    r.append("100001");
    EXPECT_FALSE(r.next().has_value());
    EXPECT_EQ(r.error(), Error::too_long);
    EXPECT_STREQ(r.error_text(), "request longer than 100000 bytes");
}

TEST(NetstringReader, LongConnectionDoesNotKeepOldRequests) {
    NetstringReader r;
    const std::string one = "11:forward a@b,";
    for (int i = 0; i < 10000; ++i) {
        r.append(one);
        ASSERT_EQ(drain(r).size(), 1u);
    }
    EXPECT_EQ(r.pending(), 0u);
    EXPECT_LE(r.held(), 4096 + one.size());
}

TEST(SocketmapRequest, SplitAtTheFirstSpace) {
    auto r = split_request("forward alice@example.org");
    EXPECT_TRUE(r.well_formed);
    EXPECT_EQ(r.name, "forward");
    EXPECT_EQ(r.key, "alice@example.org");
    // The key keeps its own spaces (a quoted local part).
    r = split_request("reverse \"a b\"@example.org");
    EXPECT_EQ(r.key, "\"a b\"@example.org");
    // An empty key is a key (the null sender).
    r = split_request("forward ");
    EXPECT_TRUE(r.well_formed);
    EXPECT_EQ(r.key, "");
    EXPECT_FALSE(split_request("forward").well_formed);
    EXPECT_FALSE(split_request(" alice@example.org").well_formed);
    EXPECT_FALSE(split_request("").well_formed);
}

TEST(SocketmapReply, ExactBytes) {
    auto reply = [](MapStatus s, std::string v) {
        std::string out;
        append_reply(out, {s, std::move(v), "never sent"});
        return out;
    };
    EXPECT_EQ(reply(MapStatus::ok, "SRS0=x=y=z=u@fwd.example"), "27:OK SRS0=x=y=z=u@fwd.example,");
    EXPECT_EQ(reply(MapStatus::notfound, ""), "9:NOTFOUND ,");
    EXPECT_EQ(reply(MapStatus::temp, "internal error"), "19:TEMP internal error,");
    EXPECT_EQ(reply(MapStatus::perm, "unknown map"), "16:PERM unknown map,");
    std::string out;
    append_netstring(out, "");
    append_netstring(out, "abc");
    EXPECT_EQ(out, "0:,3:abc,");
}

TEST(SocketmapRequest, AnsweredFromThePolicy) {
    backstop::testing::TempDir dir;
    auto policy = backstop::testing::build(backstop::testing::base_config(dir));
    auto x = answer_request(*policy, "forward carol@foreign.example", backstop::testing::kNow);
    EXPECT_EQ(x.request.name, "forward");
    EXPECT_EQ(x.answer.status, MapStatus::ok);
    EXPECT_EQ(x.answer.value,
              policy->srs()->forward("carol@foreign.example", backstop::testing::kNow)->address);
    x = answer_request(*policy, "forward", backstop::testing::kNow);
    EXPECT_EQ(x.answer.status, MapStatus::perm);
    EXPECT_EQ(x.answer.value, "malformed request: expected NAME KEY");
    x = answer_request(*policy, "lookup alice@ours.example", backstop::testing::kNow);
    EXPECT_EQ(x.answer.status, MapStatus::perm);
}

}  // namespace
