#include "backstop/envelope/srs.hpp"

#include <gtest/gtest.h>

#include "backstop/base/ascii.hpp"
#include "backstop/envelope/address.hpp"

using namespace backstop;

namespace {

constexpr UnixTime kT = 1577836860;  // 2020-01-01 00:01 UTC, stamp 2W

SrsCodec codec(SrsOptions o = {}, std::vector<std::string> secrets = {"tops3cr3t"}) {
    if (o.domain.empty()) o.domain = "example.com";
    return SrsCodec(SrsSecrets{std::move(secrets)}, o);
}

std::string fwd(const SrsCodec& c, std::string_view a, UnixTime t = kT) {
    auto r = c.forward(a, t);
    return r ? r->address : std::string("error: ") + r.error().message;
}

SrsErrc rev_error(const SrsCodec& c, std::string_view a, UnixTime t = kT) {
    auto r = c.reverse(a, t);
    EXPECT_FALSE(r.ok()) << a << " reversed to " << (r ? r->address : "");
    return r ? SrsErrc::malformed : r.error().code;
}

}  // namespace

TEST(SrsTimestamp, DesignVector) {
    EXPECT_EQ(srs_timestamp(kT), "2W");
}

TEST(SrsForward, DesignVectors) {
    auto c = codec();
    EXPECT_EQ(fwd(c, "test@otherdomain.com"), "SRS0=vmyz=2W=otherdomain.com=test@example.com");
    EXPECT_EQ(fwd(c, "sender@otherdomain.com"), "SRS0=9KJ+=2W=otherdomain.com=sender@example.com");
    EXPECT_EQ(fwd(c, "hash234@somedomain.com"), "SRS0=+3/5=2W=somedomain.com=hash234@example.com");
    EXPECT_EQ(fwd(c, "<test@otherdomain.com>"), "SRS0=vmyz=2W=otherdomain.com=test@example.com");
}

TEST(SrsForward, Srs1Vectors) {
    auto c = codec();
    auto r = c.forward("SRS0=opaque+string@otherdomain.com", kT);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->address, "SRS1=chaI=otherdomain.com==opaque+string@example.com");
    EXPECT_EQ(r->kind, SrsForwardKind::srs1);
    EXPECT_EQ(fwd(c, "SRS1=X=thirddomain.com==opaque+string@otherdomain.com"),
              "SRS1=JIBX=thirddomain.com==opaque+string@example.com");
}

TEST(SrsForward, HashLengthSix) {
    SrsOptions o;
    o.hash_length = 6;
    o.hash_minimum = 4;
    EXPECT_EQ(fwd(codec(o), "test@otherdomain.com"),
              "SRS0=vmyz7B=2W=otherdomain.com=test@example.com");
}

TEST(SrsForward, UrlAlphabet) {
    SrsOptions o;
    o.alphabet = Base64Alphabet::url;
    auto c = codec(o);
    EXPECT_EQ(fwd(c, "hash234@somedomain.com"), "SRS0=-3_5=2W=somedomain.com=hash234@example.com");
    auto back = c.reverse("SRS0=-3_5=2W=somedomain.com=hash234@example.com", kT);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->address, "hash234@somedomain.com");
    // Standard alphabet of the same hash verifies with a url-alphabet codec too.
    EXPECT_TRUE(c.reverse("SRS0=+3/5=2W=somedomain.com=hash234@example.com", kT).ok());
}

TEST(SrsForward, Separators) {
    for (char sep : {'+', '-'}) {
        SrsOptions o;
        o.separator = sep;
        auto c = codec(o);
        std::string out = fwd(c, "test@otherdomain.com");
        EXPECT_EQ(out, std::string("SRS0") + sep + "vmyz=2W=otherdomain.com=test@example.com");
        auto back = codec().reverse(out, kT);  // any separator is accepted on reverse
        ASSERT_TRUE(back.ok());
        EXPECT_EQ(back->address, "test@otherdomain.com");
    }
}

TEST(SrsForward, OurDomainAndOurOwnSrsUnchanged) {
    auto c = codec();
    auto r = c.forward("alice@Example.COM", kT);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->kind, SrsForwardKind::unchanged);
    EXPECT_EQ(r->address, "alice@Example.COM");
    // Our own SRS0 seen at another of our hosts: reverses with our key, not re-signed.
    std::string ours = fwd(c, "test@otherdomain.com");
    std::string moved = ours.substr(0, ours.find('@')) + "@relay2.example.net";
    auto again = c.forward(moved, kT);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->kind, SrsForwardKind::unchanged);
}

TEST(SrsForward, NullAndBadSender) {
    auto c = codec();
    EXPECT_EQ(c.forward("<>", kT).error().code, SrsErrc::null_sender);
    EXPECT_EQ(c.forward("no-at-sign", kT).error().code, SrsErrc::bad_address);
    EXPECT_EQ(c.forward("a b@c", kT).error().code, SrsErrc::bad_address);
}

TEST(SrsForward, LocalPartOver64OctetsIsAnError) {
    auto c = codec();
    std::string local(40, 'a');
    auto r = c.forward(local + "@a-rather-long-domain.example.org", kT);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, SrsErrc::too_long);
    EXPECT_NE(r.error().message.find("64"), std::string::npos);
    // Exactly at the limit is fine: SRS0=hhhh=TT=d.example= is 23 octets + local.
    std::string d = "d.example";
    std::size_t room = 64 - (5 + 4 + 1 + 2 + 1 + d.size() + 1);
    EXPECT_TRUE(c.forward(std::string(room, 'b') + "@" + d, kT).ok());
    EXPECT_FALSE(c.forward(std::string(room + 1, 'b') + "@" + d, kT).ok());
}

TEST(SrsForward, EqualsInLocalPartRoundTrips) {
    auto c = codec();
    std::string out = fwd(c, "a=b==c@other.example");
    auto back = c.reverse(out, kT);
    ASSERT_TRUE(back.ok()) << out;
    EXPECT_EQ(back->address, "a=b==c@other.example");
}

TEST(SrsForward, QuotedLocalPartRoundTrips) {
    auto c = codec();
    std::string out = fwd(c, "\"john smith\"@other.example");
    EXPECT_EQ(out.front(), '"');
    auto back = c.reverse(out, kT);
    ASSERT_TRUE(back.ok()) << out;
    EXPECT_EQ(back->address, "\"john smith\"@other.example");
}

TEST(SrsReverse, DesignVectors) {
    auto c = codec();
    const UnixTime t = kT;
    for (const char* a : {"SRS0=XjO9=2V=otherdomain.com=test@example.com",
                          "srs0=xjo9=2v=otherdomain.com=test@example.com",
                          "SRS0=XJO9=2V=OTHERDOMAIN.COM=TEST@EXAMPLE.COM"}) {
        auto r = c.reverse(a, t);
        ASSERT_TRUE(r.ok()) << a << ": " << r.error().message;
        EXPECT_TRUE(iequals(r->address, "test@otherdomain.com")) << r->address;
    }
    auto s1 = c.reverse("SRS1=JIBX=thirddomain.com==opaque+string@example.com", t);
    ASSERT_TRUE(s1.ok());
    EXPECT_EQ(s1->address, "SRS0=opaque+string@thirddomain.com");
    EXPECT_TRUE(s1->was_srs1);
    EXPECT_EQ(rev_error(c, "SRS0=te87=T7=otherdomain.com=test@example.com"), SrsErrc::out_of_date);
    EXPECT_EQ(rev_error(c, "SRS0=FAKE=2V=otherdomain.com=test@example.com"), SrsErrc::hash_invalid);
}

TEST(SrsReverse, ErrorsNameTheReason) {
    auto c = codec();
    EXPECT_EQ(rev_error(c, "test@otherdomain.com"), SrsErrc::not_srs);
    EXPECT_EQ(rev_error(c, "SRS0==2W=otherdomain.com=test@example.com"), SrsErrc::no_hash);
    EXPECT_EQ(rev_error(c, "SRS0=vmyz@example.com"), SrsErrc::no_timestamp);
    EXPECT_EQ(rev_error(c, "SRS0=vmyz==otherdomain.com=test@example.com"), SrsErrc::no_timestamp);
    EXPECT_EQ(rev_error(c, "SRS0=vmyz=2!=otherdomain.com=test@example.com"),
              SrsErrc::bad_timestamp);
    EXPECT_EQ(rev_error(c, "SRS0=vmyz=2W=otherdomain.com@example.com"), SrsErrc::malformed);
    EXPECT_EQ(rev_error(c, "SRS1=JIBX=thirddomain.com@example.com"), SrsErrc::malformed);
    EXPECT_EQ(rev_error(c, "SRS0=vm=2W=otherdomain.com=test@example.com"), SrsErrc::hash_too_short);
    EXPECT_EQ(c.reverse("SRS0=vmyz=2W=otherdomain.com=test@example.com", kT)->address,
              "test@otherdomain.com");
}

TEST(SrsReverse, AgeWindowAndFutureStamps) {
    auto c = codec();
    std::string out = fwd(c, "test@otherdomain.com");
    EXPECT_TRUE(c.reverse(out, kT + 21 * 86400).ok());
    EXPECT_EQ(rev_error(c, out, kT + 22 * 86400), SrsErrc::out_of_date);
    EXPECT_EQ(rev_error(c, out, kT - 86400), SrsErrc::out_of_date);  // from the future
    // The 1024-day wrap: valid again only after the stamp cycles, which max-age excludes.
    EXPECT_EQ(rev_error(c, out, kT + 1000 * 86400), SrsErrc::out_of_date);
    EXPECT_TRUE(c.reverse(out, kT + 1024 * 86400).ok());
}

TEST(SrsReverse, HashMinimumWorks) {
    SrsOptions o;
    o.hash_length = 6;
    o.hash_minimum = 6;
    auto strict = codec(o);
    EXPECT_TRUE(strict.reverse("SRS0=vmyz7B=2W=otherdomain.com=test@example.com", kT).ok());
    EXPECT_EQ(rev_error(strict, "SRS0=vmyz=2W=otherdomain.com=test@example.com"),
              SrsErrc::hash_too_short);
    o.hash_minimum = 4;
    auto lenient = codec(o);
    EXPECT_TRUE(lenient.reverse("SRS0=vmyz=2W=otherdomain.com=test@example.com", kT).ok());
    // A longer-than-emitted hash still has to match in full.
    EXPECT_EQ(rev_error(lenient, "SRS0=vmyz7C=2W=otherdomain.com=test@example.com"),
              SrsErrc::hash_invalid);
}

TEST(SrsReverse, SecretRotation) {
    auto old_codec = codec({}, {"old-secret"});
    std::string signed_old = fwd(old_codec, "user@other.example");
    auto rotated = codec({}, {"new-secret", "old-secret"});
    ASSERT_TRUE(rotated.reverse(signed_old, kT).ok());
    std::string signed_new = fwd(rotated, "user@other.example");
    EXPECT_NE(signed_new, signed_old);
    EXPECT_TRUE(codec({}, {"new-secret"}).reverse(signed_new, kT).ok());
    EXPECT_EQ(rev_error(codec({}, {"old-secret"}), signed_new), SrsErrc::hash_invalid);
}

TEST(SrsReverse, Srs1ChainUnwinds) {
    auto first = codec({}, {"first"});
    SrsOptions o2;
    o2.domain = "second.example";
    auto second = codec(o2, {"second"});
    std::string srs0 = fwd(first, "orig@sender.example");
    std::string srs1 = fwd(second, srs0);
    ASSERT_EQ(srs1.rfind("SRS1=", 0), 0u) << srs1;
    auto back1 = second.reverse(srs1, kT);
    ASSERT_TRUE(back1.ok());
    EXPECT_EQ(back1->address, srs0);
    auto back0 = first.reverse(back1->address, kT);
    ASSERT_TRUE(back0.ok());
    EXPECT_EQ(back0->address, "orig@sender.example");
}

TEST(SrsDecodeUnverified, NoKeyNeeded) {
    EXPECT_EQ(*srs_decode_unverified("SRS0=vmyz=2W=otherdomain.com=test"), "test@otherdomain.com");
    EXPECT_EQ(*srs_decode_unverified("SRS1=JIBX=thirddomain.com==opaque+string"),
              "SRS0=opaque+string@thirddomain.com");
    EXPECT_FALSE(srs_decode_unverified("plain").ok());
}

TEST(SrsOptionsCheck, RejectsNonsense) {
    SrsOptions o;
    o.domain = "example.com";
    EXPECT_EQ(SrsCodec::check_options(o), "");
    o.separator = '*';
    EXPECT_NE(SrsCodec::check_options(o), "");
    o = {};
    o.domain = "example.com";
    o.hash_minimum = 5;
    EXPECT_NE(SrsCodec::check_options(o), "");
    o = {};
    EXPECT_NE(SrsCodec::check_options(o), "");
    EXPECT_THROW(SrsCodec(SrsSecrets{}, SrsOptions{"example.com"}), std::invalid_argument);
}
