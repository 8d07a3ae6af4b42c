// postsrsd 2's aliases (envelope/srs_alias.hpp): base32hex, the alias of a sender,
// the key of an alias that came back, and the SRS address an alias leaves as.
#include "backstop/envelope/srs_alias.hpp"

#include <gtest/gtest.h>

#include <string>

#include "backstop/base/encoding.hpp"
#include "backstop/envelope/srs.hpp"

using namespace backstop;

namespace {

std::string b32h(std::string_view s) {
    return base32hex_encode(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

}  // namespace

// RFC 4648 section 10, the base32hex vectors, without their padding.
TEST(Base32Hex, Rfc4648Vectors) {
    EXPECT_EQ(b32h(""), "");
    EXPECT_EQ(b32h("f"), "CO");
    EXPECT_EQ(b32h("fo"), "CPNG");
    EXPECT_EQ(b32h("foo"), "CPNMU");
    EXPECT_EQ(b32h("foob"), "CPNMUOG");
    EXPECT_EQ(b32h("fooba"), "CPNMUOJ1");
    EXPECT_EQ(b32h("foobar"), "CPNMUOJ1E8");
    // Every value of a 5-bit group, high bits included: 0-9 then A-V.
    const std::uint8_t ones[5] = {0xff, 0xff, 0xff, 0xff, 0xff};
    EXPECT_EQ(base32hex_encode(ones, 5), "VVVVVVVV");
    const std::uint8_t ramp[5] = {0x00, 0x44, 0x32, 0x14, 0xc7};  // 0 1 2 3 4 5 6 7
    EXPECT_EQ(base32hex_encode(ramp, 5), "01234567");
}

TEST(SrsAlias, IssueVector) {
    const std::string sender =
        "a.very.long.sender.address.with.many.parts.for.testing.only@subdomain.of.a.long."
        "example-domain.org";
    ASSERT_EQ(sender.size(), 98u);
    EXPECT_EQ(srs_alias(sender), "177RE26INPKI1O95KN4J23EVADPI3JDD@1");
}

// The bytes as given: case is not folded (postsrsd 2 hashes the address it got).
TEST(SrsAlias, HashesTheSenderAsGiven) {
    EXPECT_EQ(srs_alias("test@otherdomain.com"), "DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ@1");
    EXPECT_NE(srs_alias("Test@otherdomain.com"), srs_alias("test@otherdomain.com"));
    EXPECT_EQ(srs_alias("x@y").size(), 34u);
}

// postsrsd 2's own socketmap test (tests/..., secret tops3cr3t, 2020-01-01 00:01 UTC,
// SRS domain example.com, original-envelope = database): the alias address it writes.
TEST(SrsAlias, ForwardsAsPostsrsd2Does) {
    SrsOptions o;
    o.domain = "example.com";
    SrsCodec c(SrsSecrets{{"tops3cr3t"}}, o);
    auto f = c.forward(srs_alias("test@otherdomain.com"), 1577836860);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->address, "SRS0=bxzH=2W=1=DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ@example.com");
    // And back, in any case the alias comes back in.
    auto r = c.reverse("SRS0=bxzH=2W=1=dcjgde6n24lcrt41a4t0g1uif0dtkkqj@example.com", 1577836860);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(srs_alias_key(r->address), "DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ@1");
}

TEST(SrsAlias, KeyOnlyForDomainOne) {
    EXPECT_EQ(srs_alias_key("abc@1"), "ABC@1");
    EXPECT_EQ(srs_alias_key("ABC@1"), "ABC@1");
    EXPECT_FALSE(srs_alias_key("abc@10").has_value());
    EXPECT_FALSE(srs_alias_key("abc@example.org").has_value());
    EXPECT_FALSE(srs_alias_key("@1").has_value());
    EXPECT_FALSE(srs_alias_key("abc").has_value());
}
