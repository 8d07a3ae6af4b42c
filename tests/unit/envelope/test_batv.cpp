#include "backstop/envelope/batv.hpp"

#include <gtest/gtest.h>

using namespace backstop;

namespace {

// A day whose number mod 1000 is 779: signing with lifetime 7 gives DDD 786.
constexpr UnixTime kDay779 = UnixTime(20779) * 86400 + 3600;

BatvSigner signer(std::vector<BatvKey> keys = {{1, "secret"}, {0, "secret"}, {3, "secret"}},
                  BatvOptions o = {}) {
    return BatvSigner(BatvKeys{std::move(keys)}, o);
}

}  // namespace

TEST(BatvSign, DesignVectors) {
    auto s = signer();
    EXPECT_EQ(s.sign_with("user@example.com", 1, 786), "prvs=1786c06615=user@example.com");
    EXPECT_EQ(s.sign_with("user@example.com", 0, 786), "prvs=07867e8775=user@example.com");
    EXPECT_EQ(s.sign_with("user@example.com", 0, 779), "prvs=077934312a=user@example.com");
    EXPECT_EQ(s.sign_with("user@example.com", 0, 999), "prvs=099999d073=user@example.com");
    EXPECT_EQ(s.sign_with("First.Last+x@Example.COM", 3, 786),
              "prvs=37868a4174=First.Last+x@Example.COM");
}

TEST(BatvSign, UsesFirstKeyAndLifetime) {
    auto s = signer();
    auto r = s.sign("<user@example.com>", kDay779);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, "prvs=1786c06615=user@example.com");
}

TEST(BatvSign, RetagsInsteadOfNesting) {
    auto s = signer();
    auto r = s.sign("prvs=0123abcdef=user@example.com", kDay779);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, "prvs=1786c06615=user@example.com");
}

TEST(BatvSign, NullAndBad) {
    auto s = signer();
    EXPECT_FALSE(s.sign("<>", kDay779).ok());
    EXPECT_FALSE(s.sign("nodomain", kDay779).ok());
}

TEST(BatvVerify, ValidAcrossTheLifetime) {
    auto s = signer();
    std::string tag = *s.sign("user@example.com", kDay779);
    for (int d = 0; d <= 7; ++d) {
        auto v = s.verify(tag, kDay779 + d * 86400);
        EXPECT_EQ(v.status, BatvStatus::valid) << "day +" << d;
        EXPECT_EQ(v.original, "user@example.com");
        EXPECT_EQ(v.form, BatvForm::standard);
    }
    EXPECT_EQ(s.verify(tag, kDay779 + 8 * 86400).status, BatvStatus::expired);
    EXPECT_EQ(s.verify(tag, kDay779 + 500 * 86400).status, BatvStatus::expired);
}

TEST(BatvVerify, BoundedWindowRejectsFarFuture) {
    // Exim accepts any future day; a tag dated further ahead than our lifetime could
    // only come from a leaked key or a wrong clock.
    auto s = signer();
    std::string far = s.sign_with("user@example.com", 1, 779 + 30);
    EXPECT_EQ(s.verify(far, kDay779).status, BatvStatus::expired);
}

TEST(BatvVerify, DayStampWrapsAt1000) {
    auto s = signer();
    // Day ...998 signs 005; valid on ...999 and ...003 (wrapped).
    UnixTime day998 = UnixTime(20998) * 86400;
    std::string tag = *s.sign("user@example.com", day998);
    EXPECT_NE(tag.find("prvs=1005"), std::string::npos) << tag;
    EXPECT_EQ(s.verify(tag, day998 + 86400).status, BatvStatus::valid);
    EXPECT_EQ(s.verify(tag, day998 + 5 * 86400).status, BatvStatus::valid);
    EXPECT_EQ(s.verify(tag, day998 + 8 * 86400).status, BatvStatus::expired);
    std::string d999 = s.sign_with("user@example.com", 0, 999);
    EXPECT_EQ(s.verify(d999, UnixTime(20995) * 86400).status, BatvStatus::valid);
    std::string d000 = s.sign_with("user@example.com", 0, 0);
    EXPECT_EQ(s.verify(d000, UnixTime(20999) * 86400).status, BatvStatus::valid);
}

TEST(BatvVerify, CaseOfTagTypeAndHex) {
    auto s = signer();
    EXPECT_EQ(s.verify("PRVS=1786C06615=user@example.com", kDay779).status, BatvStatus::valid);
    EXPECT_EQ(s.verify("Prvs=1786c06615=user@example.com", kDay779).status, BatvStatus::valid);
    // The address itself is not case-folded: a changed case is a different address.
    EXPECT_EQ(s.verify("prvs=1786c06615=User@example.com", kDay779).status,
              BatvStatus::bad_signature);
}

TEST(BatvVerify, Statuses) {
    auto s = signer();
    EXPECT_EQ(s.verify("user@example.com", kDay779).status, BatvStatus::missing);
    EXPECT_EQ(s.verify("prvs=17x6c06615=user@example.com", kDay779).status, BatvStatus::malformed);
    EXPECT_EQ(s.verify("prvs=user@example.com", kDay779).status, BatvStatus::malformed);
    EXPECT_EQ(s.verify("prvs=1786c06616=user@example.com", kDay779).status,
              BatvStatus::bad_signature);
    EXPECT_EQ(s.verify("prvs=9786c06615=user@example.com", kDay779).status,
              BatvStatus::unknown_key);
    EXPECT_EQ(s.verify("<>", kDay779).status, BatvStatus::missing);
}

TEST(BatvVerify, OldOrder) {
    auto s = signer();
    auto v = s.verify("prvs=user=1786c06615@example.com", kDay779);
    EXPECT_EQ(v.status, BatvStatus::valid);
    EXPECT_EQ(v.form, BatvForm::old_order);
    EXPECT_EQ(v.original, "user@example.com");
}

TEST(BatvVerify, SubaddressOnlyWhenAsked) {
    auto plain = signer();
    EXPECT_EQ(plain.verify("user+prvs=1786c06615@example.com", kDay779).status,
              BatvStatus::missing);
    BatvOptions o;
    o.accept_subaddress = true;
    auto sub = signer({{1, "secret"}}, o);
    auto v = sub.verify("user+prvs=1786c06615@example.com", kDay779);
    EXPECT_EQ(v.status, BatvStatus::valid);
    EXPECT_EQ(v.form, BatvForm::subaddress);
    EXPECT_EQ(v.original, "user@example.com");
    EXPECT_EQ(sub.verify("user+prvs=nothex@example.com", kDay779).status, BatvStatus::malformed);
}

TEST(BatvVerify, KeyRotationByDigit) {
    auto old_keys = signer({{2, "old"}});
    std::string old_tag = *old_keys.sign("user@example.com", kDay779);
    auto rotated = signer({{3, "new"}, {2, "old"}});
    EXPECT_EQ(rotated.verify(old_tag, kDay779).status, BatvStatus::valid);
    std::string new_tag = *rotated.sign("user@example.com", kDay779);
    EXPECT_EQ(new_tag.substr(0, 6), "prvs=3");
    EXPECT_EQ(old_keys.verify(new_tag, kDay779).status, BatvStatus::unknown_key);
}

TEST(BatvVerify, QuotedLocalPartRoundTrips) {
    auto s = signer();
    std::string tag = *s.sign("\"a b\"@example.com", kDay779);
    auto v = s.verify(tag, kDay779);
    EXPECT_EQ(v.status, BatvStatus::valid) << tag;
    EXPECT_EQ(v.original, "\"a b\"@example.com");
}

TEST(BatvSigner, RejectsBadSetup) {
    EXPECT_THROW(BatvSigner(BatvKeys{}, {}), std::invalid_argument);
    BatvOptions o;
    o.lifetime = 0;
    EXPECT_THROW(BatvSigner(BatvKeys{{{1, "k"}}}, o), std::invalid_argument);
}
