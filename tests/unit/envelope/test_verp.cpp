#include "backstop/envelope/verp.hpp"

#include <gtest/gtest.h>

using namespace backstop;

TEST(Verp, PostfixXverp) {
    auto r = verp_encode("owner@lists.example", "user@domain.example");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, "owner+user=domain.example@lists.example");
    auto d = verp_decode(*r);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, "user@domain.example");
}

TEST(Verp, QmailPrefix) {
    auto r = verp_encode("list-@lists.example-@[]", "user@domain.example");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, "list-user=domain.example@lists.example");
    EXPECT_EQ(*verp_decode(*r, {'-', '='}), "user@domain.example");
}

TEST(Verp, DecodeSplitsOnLastEquals) {
    EXPECT_EQ(*verp_decode("owner+a=b=domain.example@lists.example"), "a=b@domain.example");
    EXPECT_EQ(*verp_decode("owner+user+tag=domain.example@lists.example"),
              "user+tag@domain.example");
}

TEST(Verp, CustomDelimiters) {
    auto d = parse_verp_delimiters("-#");
    ASSERT_TRUE(d.ok());
    auto r = verp_encode("bounce@x.example", "u@y.example", *d);
    EXPECT_EQ(*r, "bounce-u#y.example@x.example");
    EXPECT_EQ(*verp_decode(*r, *d), "u@y.example");
    EXPECT_FALSE(parse_verp_delimiters("+").ok());
    EXPECT_FALSE(parse_verp_delimiters("++").ok());
    EXPECT_FALSE(parse_verp_delimiters("ab").ok());
}

TEST(Verp, NotVerp) {
    EXPECT_FALSE(verp_decode("owner@lists.example").ok());
    EXPECT_FALSE(verp_decode("owner+nodomain@lists.example").ok());
    EXPECT_FALSE(verp_decode("<>").ok());
    EXPECT_FALSE(verp_encode("owner@lists.example", "nodomain").ok());
    EXPECT_FALSE(verp_encode("bad", "u@y.example").ok());
}
