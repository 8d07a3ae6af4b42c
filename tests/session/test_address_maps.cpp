// The socketmap's maps (forward, reverse) on the shared test policy, at kNow.
#include "backstop/policy/address_maps.hpp"

#include <gtest/gtest.h>

#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/srs.hpp"
#include "test_policy.hpp"

using namespace backstop;
using namespace backstop::testing;

namespace {

class AddressMapsTest : public ::testing::Test {
  protected:
    TempDir dir;
    Config config = base_config(dir);

    MapAnswer ask(std::string_view map, std::string_view key) {
        return lookup(*build(config), map, key, kNow);
    }
    std::string tag(const std::string& a, UnixTime when = kNow) {
        return *build(config)->batv()->sign(a, when);
    }
    std::string srs(const std::string& a, UnixTime when = kNow) {
        return build(config)->srs()->forward(a, when)->address;
    }
    // NOTFOUND, and the reason (for the debug log) says why.
    void expect_notfound(std::string_view map, std::string_view key, std::string_view why) {
        MapAnswer a = ask(map, key);
        EXPECT_EQ(a.status, MapStatus::notfound) << map << " " << key << " -> " << a.value;
        EXPECT_TRUE(a.value.empty()) << a.value;
        EXPECT_NE(a.why.find(why), std::string::npos) << key << ": " << a.why;
    }
};

}  // namespace

TEST_F(AddressMapsTest, ForwardRewritesAForeignSenderToSrs0) {
    MapAnswer a = ask("forward", "carol@foreign.example");
    ASSERT_EQ(a.status, MapStatus::ok) << a.why;
    // The very address the milter's own outbound SRS writes.
    EXPECT_EQ(a.value, srs("carol@foreign.example"));
    EXPECT_EQ(a.value.rfind("SRS0=", 0), 0u) << a.value;
    EXPECT_NE(a.value.find("=foreign.example=carol@fwd.ours.example"), std::string::npos);
    // And the reverse map takes it back.
    MapAnswer back = ask("reverse", a.value);
    ASSERT_EQ(back.status, MapStatus::ok) << back.why;
    EXPECT_EQ(back.value, "carol@foreign.example");
}

TEST_F(AddressMapsTest, ForwardRewritesAnotherForwardersSrs0ToSrs1) {
    MapAnswer a = ask("forward", "SRS0=abcd=2W=a.example=u@other-forwarder.example");
    ASSERT_EQ(a.status, MapStatus::ok) << a.why;
    EXPECT_EQ(a.value.rfind("SRS1=", 0), 0u) << a.value;
    EXPECT_EQ(a.value, srs("SRS0=abcd=2W=a.example=u@other-forwarder.example"));
    EXPECT_NE(a.value.find("@fwd.ours.example"), std::string::npos);
}

TEST_F(AddressMapsTest, ForwardLeavesLocalSendersAlone) {
    expect_notfound("forward", "alice@ours.example", "local sender");
    expect_notfound("forward", "Alice@OURS.Example", "local sender");
    // A tagged local sender is still ours: BATV, never SRS.
    expect_notfound("forward", tag("alice@ours.example"), "local sender");
}

TEST_F(AddressMapsTest, ForwardLeavesOurOwnSrsAlone) {
    const std::string ours = srs("carol@foreign.example");
    expect_notfound("forward", ours, "already srs");
    // Any address at our SRS domain.
    expect_notfound("forward", "postmaster@fwd.ours.example", "already srs");
    // Our SRS seen at another domain (our secrets verify it): not nested again.
    const std::string elsewhere = ours.substr(0, ours.find('@')) + "@relay.example";
    expect_notfound("forward", elsewhere, "already srs");
}

TEST_F(AddressMapsTest, ForwardNullPartialAndUnparsableKeysAreNotFound) {
    expect_notfound("forward", "", "null sender");
    expect_notfound("forward", "<>", "null sender");
    // Postfix asks "user" and "@domain" after the full address.
    expect_notfound("forward", "carol", "no @");
    expect_notfound("forward", "@foreign.example", "not an address");
    expect_notfound("forward", "carol@", "not an address");
    expect_notfound("forward", "car ol@foreign.example", "not an address");
    expect_notfound("forward", "carol@foreign..example", "not an address");
    expect_notfound("forward", std::string("carol\0x@foreign.example", 24), "not an address");
}

TEST_F(AddressMapsTest, ForwardRefusesAnSrsLocalPartOver64Octets) {
    // SRS0=HHHH=TT= (13) + the domain + '=' + the local part.
    const std::string sender = std::string(40, 'l') + "@a-rather-long.foreign.example";
    expect_notfound("forward", sender, "RFC 5321 allows 64");
    // One that fits is rewritten.
    EXPECT_EQ(ask("forward", std::string(10, 'l') + "@a-rather-long.foreign.example").status,
              MapStatus::ok);
}

TEST_F(AddressMapsTest, ForwardWithSrsOffIsNotFound) {
    config.srs_enable = false;
    expect_notfound("forward", "carol@foreign.example", "srs is off");
}

TEST_F(AddressMapsTest, ReverseMapsOurSrs0ToTheOriginal) {
    MapAnswer a = ask("reverse", srs("carol@foreign.example", kNow - 3 * 86400));
    ASSERT_EQ(a.status, MapStatus::ok) << a.why;
    EXPECT_EQ(a.value, "carol@foreign.example");
    // The SRS domain in any case, as the MTA may hand it over.
    std::string upper = srs("carol@foreign.example");
    upper.replace(upper.find("@fwd.ours.example"), 17, "@FWD.Ours.Example");
    EXPECT_EQ(ask("reverse", upper).value, "carol@foreign.example");
}

TEST_F(AddressMapsTest, ReverseMapsOurSrs1ToTheSrs0ItWraps) {
    const std::string srs0 = "SRS0=abcd=2W=a.example=u@other-forwarder.example";
    MapAnswer a = ask("reverse", srs(srs0));
    ASSERT_EQ(a.status, MapStatus::ok) << a.why;
    EXPECT_EQ(a.value, srs0);
    // As `backstop srs reverse` and the milter do.
    EXPECT_EQ(a.value, build(config)->srs()->reverse(srs(srs0), kNow)->address);
}

TEST_F(AddressMapsTest, ReverseMapsAValidBatvTagToTheMailbox) {
    const std::string tagged = tag("alice@ours.example", kNow - 3 * 86400);
    MapAnswer a = ask("reverse", tagged);
    ASSERT_EQ(a.status, MapStatus::ok) << a.why;
    EXPECT_EQ(a.value, "alice@ours.example");
    // The old order prvs=local=TAG@domain.
    const std::string t = tagged.substr(5, 10);
    EXPECT_EQ(ask("reverse", "prvs=alice=" + t + "@ours.example").value, "alice@ours.example");
}

TEST_F(AddressMapsTest, ReverseSubaddressFormOnlyWhenConfigured) {
    const std::string t = tag("alice@ours.example").substr(5, 10);
    const std::string sub = "alice+prvs=" + t + "@ours.example";
    expect_notfound("reverse", sub, "missing");
    config.batv_subaddress = true;
    MapAnswer a = ask("reverse", sub);
    ASSERT_EQ(a.status, MapStatus::ok) << a.why;
    EXPECT_EQ(a.value, "alice@ours.example");
}

TEST_F(AddressMapsTest, ReverseNeverMapsForgedExpiredOrUnsignedAddresses) {
    // SRS: forged hash, out of date, not SRS at all, foreign SRS.
    expect_notfound("reverse", "SRS0=FAKE=2W=victim.example=v@fwd.ours.example", "hash invalid");
    expect_notfound("reverse", srs("v@victim.example", kNow - 40 * 86400), "out of date");
    expect_notfound("reverse", "SRS0=abcd=2W=a.example=u@other-forwarder.example",
                    "not our domain");
    expect_notfound("reverse", "bob@fwd.ours.example", "not our domain");
    // BATV: forged, expired, unknown key, unsigned, malformed.
    expect_notfound("reverse", "prvs=1786000000=alice@ours.example", "bad-signature");
    expect_notfound("reverse", tag("alice@ours.example", kNow - 30 * 86400), "expired");
    const std::string t = tag("alice@ours.example");
    expect_notfound("reverse", "prvs=9" + t.substr(6), "unknown-key");
    expect_notfound("reverse", "alice@ours.example", "missing");
    expect_notfound("reverse", "prvs=zz=alice@ours.example", "malformed");
    // A tag valid with our key but at a domain not ours is never a relay.
    expect_notfound("reverse", tag("bob@foreign.example"), "not our domain");
    // Partial, null and unparsable keys.
    expect_notfound("reverse", "", "null sender");
    expect_notfound("reverse", "alice", "no @");
    expect_notfound("reverse", "@ours.example", "not an address");
    expect_notfound("reverse", "a b@ours.example", "not an address");
}

TEST_F(AddressMapsTest, ReverseWithSigningOffIsNotFound) {
    const std::string tagged = tag("alice@ours.example");
    const std::string srs0 = srs("carol@foreign.example");
    config.batv_enable = false;
    expect_notfound("reverse", tagged, "batv is off");
    config.srs_enable = false;
    // Without SRS the SRS domain is no longer ours.
    expect_notfound("reverse", srs0, "not our domain");
}

TEST_F(AddressMapsTest, UnknownMapIsPerm) {
    for (std::string_view map : {"", "Forward", "canonical", "forward "}) {
        MapAnswer a = ask(map, "carol@foreign.example");
        EXPECT_EQ(a.status, MapStatus::perm) << "'" << map << "'";
        EXPECT_EQ(a.value, "unknown map (forward or reverse)");
    }
}
