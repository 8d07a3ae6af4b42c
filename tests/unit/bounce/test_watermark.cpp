// Watermarks: sign/verify round trips, expiry, key rotation, tampering, and
// MailScanner's MD5 form.
#include <gtest/gtest.h>

#include <string>

#include "backstop/bounce/watermark.hpp"

using namespace backstop;

namespace {
constexpr UnixTime kNow = 1772442000;  // 2026-03-02
Watermark make(std::initializer_list<std::string> keys, WatermarkConfig cfg = {}) {
    return Watermark(SecretList{std::vector<std::string>(keys)}, cfg);
}
}  // namespace

TEST(Watermark, FormatIsVersionExpirySignature) {
    auto w = make({"k1"});
    std::string v = w.sign("Alice@Sender.Example", "<id@x>", kNow);
    EXPECT_EQ(v.rfind("v=1; e=" + std::to_string(kNow + 14 * 86400) + "; s=", 0), 0u) << v;
    std::string sig = v.substr(v.find("s=") + 2);
    EXPECT_EQ(sig.size(), 22u);  // 16 bytes, base64url without padding
    EXPECT_EQ(sig.find_first_of("+/="), std::string::npos);
    // Deterministic.
    EXPECT_EQ(v, w.sign("Alice@Sender.Example", "<id@x>", kNow));
}

TEST(Watermark, VerifyRoundTripAndCaseOfSender) {
    auto w = make({"k1"});
    std::string v = w.sign("alice@sender.example", "<id@x>", kNow);
    EXPECT_EQ(w.verify(v, "ALICE@sender.example", "<id@x>", kNow + 60), WatermarkStatus::valid);
    EXPECT_EQ(w.verify(v, "<alice@sender.example>", " <id@x> ", kNow), WatermarkStatus::valid);
}

TEST(Watermark, WrongInputsAreInvalid) {
    auto w = make({"k1"});
    std::string v = w.sign("alice@sender.example", "<id@x>", kNow);
    EXPECT_EQ(w.verify(v, "mallory@sender.example", "<id@x>", kNow), WatermarkStatus::invalid);
    EXPECT_EQ(w.verify(v, "alice@sender.example", "<other@x>", kNow), WatermarkStatus::invalid);
    // A later expiry written by hand breaks the MAC.
    std::string forged = v;
    forged.replace(forged.find("e=") + 2, 10, std::to_string(kNow + 99 * 86400));
    EXPECT_EQ(w.verify(forged, "alice@sender.example", "<id@x>", kNow), WatermarkStatus::invalid);
    EXPECT_EQ(w.verify("v=2; e=1; s=AAAA", "a@b", "<i>", kNow), WatermarkStatus::invalid);
    EXPECT_EQ(w.verify("garbage", "a@b", "<i>", kNow), WatermarkStatus::invalid);
    EXPECT_EQ(w.verify("", "a@b", "<i>", kNow), WatermarkStatus::absent);
    EXPECT_EQ(make({"other"}).verify(v, "alice@sender.example", "<id@x>", kNow),
              WatermarkStatus::invalid);
}

TEST(Watermark, ExpiryAndLifetime) {
    WatermarkConfig cfg;
    cfg.lifetime = 86400;
    auto w = make({"k1"}, cfg);
    std::string v = w.sign("a@b.example", "<i@b>", kNow);
    EXPECT_EQ(w.verify(v, "a@b.example", "<i@b>", kNow + 86400), WatermarkStatus::valid);
    EXPECT_EQ(w.verify(v, "a@b.example", "<i@b>", kNow + 86401), WatermarkStatus::expired);
}

TEST(Watermark, FirstKeySignsAllVerify) {
    auto old_keys = make({"old"});
    auto rotated = make({"new", "old"});
    std::string by_old = old_keys.sign("a@b.example", "<i@b>", kNow);
    EXPECT_EQ(rotated.verify(by_old, "a@b.example", "<i@b>", kNow), WatermarkStatus::valid);
    std::string by_new = rotated.sign("a@b.example", "<i@b>", kNow);
    EXPECT_NE(by_new, by_old);
    EXPECT_EQ(old_keys.verify(by_new, "a@b.example", "<i@b>", kNow), WatermarkStatus::invalid);
}

TEST(Watermark, MailScannerForm) {
    WatermarkConfig cfg;
    cfg.mailscanner_secret = "ms-secret";
    auto w = make({}, cfg);
    const std::string date = "Mon, 2 Mar 2026 10:00:00 +0100";
    const std::string id = "<ms-1@sender.example>";
    std::string value = Watermark::mailscanner_value("1773000000.4242", date, "ms-secret", id);
    EXPECT_EQ(value.rfind("1773000000.4242@", 0), 0u);
    EXPECT_EQ(value.size(),
              std::string("1773000000.4242@").size() + 22);  // md5, base64, no padding
    EXPECT_EQ(w.verify_mailscanner(value, date, id, kNow), WatermarkStatus::valid);
    EXPECT_EQ(w.verify_mailscanner(value, date, id, 1773000001), WatermarkStatus::expired);
    EXPECT_EQ(w.verify_mailscanner(value, "Mon, 2 Mar 2026 10:00:01 +0100", id, kNow),
              WatermarkStatus::invalid);
    EXPECT_EQ(w.verify_mailscanner(value, date, "<other@x>", kNow), WatermarkStatus::invalid);
    // Without a secret MailScanner marks are not looked at.
    EXPECT_EQ(make({"k"}).verify_mailscanner(value, date, id, kNow), WatermarkStatus::absent);
}

TEST(Watermark, MailScannerKnownAnswer) {
    // md5_base64("1773000000.4242$%1772442000$%ms-secret$%<ms-1@sender.example>") as
    // Perl's Digest::MD5 computes it (checked with: perl -MDigest::MD5=md5_base64).
    std::string value = Watermark::mailscanner_value(
        "1773000000.4242", "Mon, 2 Mar 2026 10:00:00 +0100", "ms-secret", "<ms-1@sender.example>");
    EXPECT_EQ(value, "1773000000.4242@1vyKyZA8BTxw/yZ9PAnnsA");
}

TEST(Watermark, CheckPrefersOurs) {
    WatermarkConfig cfg;
    cfg.mailscanner_secret = "ms";
    auto w = make({"k1"}, cfg);
    WatermarkInput in;
    in.envelope_sender = "a@b.example";
    in.message_id = "<i@b>";
    in.date = "Mon, 2 Mar 2026 10:00:00 +0100";
    EXPECT_EQ(w.check(in, kNow), WatermarkStatus::absent);
    in.mailscanner = Watermark::mailscanner_value("1773000000", in.date, "ms", in.message_id);
    EXPECT_EQ(w.check(in, kNow), WatermarkStatus::valid);
    in.value = "v=1; e=1; s=bad";
    EXPECT_EQ(w.check(in, kNow), WatermarkStatus::invalid);
}

TEST(Rfc5322Date, Forms) {
    EXPECT_EQ(parse_rfc5322_date("Thu, 1 Jan 1970 00:00:00 +0000"), 0);
    EXPECT_EQ(parse_rfc5322_date("Mon, 2 Mar 2026 10:00:00 +0100"), 1772442000);
    EXPECT_EQ(parse_rfc5322_date("2 Mar 2026 09:00:00 GMT"), 1772442000);
    EXPECT_EQ(parse_rfc5322_date("2 Mar 26 04:00 EST"), 1772442000);
    EXPECT_EQ(parse_rfc5322_date("Mon, 2 Mar 2026 18:00:00 +0900 (JST)"), 1772442000);
    EXPECT_FALSE(parse_rfc5322_date("yesterday").has_value());
    EXPECT_FALSE(parse_rfc5322_date("").has_value());
}

TEST(Watermark, TaggedReturnPathStillVerifies) {
    // We sign the plain sender; the original comes back with the BATV-tagged path.
    auto w = make({"k1"});
    std::string v = w.sign("alice@sender.example", "<id@x>", kNow);
    EXPECT_EQ(w.verify(v, "prvs=0123456789=alice@sender.example", "<id@x>", kNow),
              WatermarkStatus::valid);
    EXPECT_EQ(w.verify(v, "<Alice@Sender.Example>", "<id@x>", kNow), WatermarkStatus::valid);
}
