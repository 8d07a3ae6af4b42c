// One hand-written fixture per supported format (tests/fixtures/bounce): kind,
// recipients, status, reason, hard/soft and the returned original.
#include <gtest/gtest.h>

#include <string>

#include "backstop/bounce/classify.hpp"
#include "bounce_fixture.hpp"

using namespace backstop;

namespace {

Classification classify(const std::string& name, const std::string& envelope_recipient = "") {
    ClassifyOptions opts;
    opts.envelope_recipient = envelope_recipient;
    return BounceClassifier{}.classify(fixture(name), opts);
}

void expect_one(const Classification& c, const std::string& address, const std::string& status,
                const std::string& reason, bool hard) {
    ASSERT_EQ(c.kind, MessageKind::dsn);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, address);
    EXPECT_EQ(c.recipients[0].status, status);
    EXPECT_EQ(c.recipients[0].reason, reason);
    EXPECT_EQ(c.recipients[0].hard, hard);
}

}  // namespace

TEST(BounceFormats, PostfixDsn) {
    auto c = classify("postfix-dsn.eml");
    expect_one(c, "bob@rcpt.example", "5.1.1", "userunknown", true);
    EXPECT_EQ(c.mta, "postfix");
    EXPECT_EQ(c.recipients[0].reply_code, "550");
    EXPECT_EQ(c.recipients[0].action, "failed");
    EXPECT_TRUE(c.original.present);
    EXPECT_EQ(c.original.message_id, "<fixture-postfix-1@sender.example>");
    EXPECT_EQ(c.original.envelope_sender, "alice@sender.example");
    EXPECT_EQ(c.original.received.size(), 1u);
    EXPECT_EQ(c.original.watermark_found.value, "WATERMARK_PLACEHOLDER");
}

TEST(BounceFormats, SendmailTwoRecipientsInOneBlock) {
    auto c = classify("sendmail-dsn-multi.eml");
    ASSERT_EQ(c.kind, MessageKind::dsn);
    ASSERT_EQ(c.recipients.size(), 2u);
    EXPECT_EQ(c.recipients[0].address, "dave@full.example");
    EXPECT_EQ(c.recipients[0].reason, "mailboxfull");
    EXPECT_FALSE(c.recipients[0].hard);
    EXPECT_EQ(c.recipients[1].address, "erin@gone.example");
    EXPECT_EQ(c.recipients[1].reason, "userunknown");
    EXPECT_TRUE(c.recipients[1].hard);
    EXPECT_EQ(c.original.message_id, "<fixture-sendmail-2@sender.example>");
}

TEST(BounceFormats, EximText) {
    auto c = classify("exim-text.eml");
    expect_one(c, "grace@rcpt.example", "5.7.1", "blocked", false);
    EXPECT_EQ(c.mta, "exim");
    EXPECT_EQ(c.original.message_id, "<fixture-exim-3@sender.example>");
    EXPECT_EQ(c.original.envelope_sender, "frank@sender.example");
}

TEST(BounceFormats, QmailText) {
    auto c = classify("qmail-text.eml");
    expect_one(c, "ivan@nowhere.example", "5.1.2", "hostunknown", true);
    EXPECT_EQ(c.mta, "qmail");
    EXPECT_EQ(c.original.message_id, "<fixture-qmail-4@sender.example>");
}

TEST(BounceFormats, GmailText) {
    auto c = classify("gmail-text.eml");
    expect_one(c, "mallory@rcpt.example", "5.2.2", "mailboxfull", false);
    EXPECT_EQ(c.recipients[0].reply_code, "552");
    EXPECT_EQ(c.original.message_id, "<fixture-gmail-5@sender.example>");
}

TEST(BounceFormats, DragonflySentence) {
    auto c = classify("dragonfly-text.eml");
    expect_one(c, "olivia@rcpt.example", "5.7.26", "authfailure", false);
    EXPECT_EQ(c.original.message_id, "<fixture-dragonfly-6@sender.example>");
}

TEST(BounceFormats, YahooText) {
    auto c = classify("yahoo-text.eml");
    expect_one(c, "rupert@rcpt.example", "", "userunknown", true);
    EXPECT_EQ(c.recipients[0].reply_code, "554");
}

TEST(BounceFormats, DelayedWithBase64DeliveryStatus) {
    auto c = classify("exchange-delayed.eml");
    expect_one(c, "trent@rcpt.example", "4.4.7", "expired", false);
    EXPECT_EQ(c.recipients[0].action, "delayed");
    EXPECT_FALSE(c.recipients[0].failed());
    EXPECT_TRUE(c.failed_recipients().empty());
    EXPECT_EQ(c.original.message_id, "<fixture-exchange-8@sender.example>");
}

TEST(BounceFormats, AmazonSesJson) {
    auto c = classify("amazonses-json.eml");
    expect_one(c, "walter@rcpt.example", "5.1.1", "userunknown", true);
    EXPECT_EQ(c.mta, "amazonses");
}

TEST(BounceFormats, BrokenBoundaryStillReadable) {
    auto c = classify("broken-boundary.eml");
    expect_one(c, "dora@rcpt.example", "4.2.2", "mailboxfull", false);
}

TEST(BounceFormats, FeedbackReport) {
    auto c = classify("arf-feedback.eml");
    EXPECT_EQ(c.kind, MessageKind::feedback);
    EXPECT_TRUE(c.recipients.empty());
    ASSERT_EQ(c.about.size(), 1u);
    EXPECT_EQ(c.about[0], "xavier@isp.example");
    EXPECT_EQ(c.original.message_id, "<fixture-arf-10@sender.example>");
}

TEST(BounceFormats, AutoReplies) {
    auto a = classify("autoreply-rfc3834.eml");
    EXPECT_EQ(a.kind, MessageKind::autoreply);
    EXPECT_TRUE(a.recipients.empty());
    auto v = classify("autoreply-vacation-ja.eml");
    EXPECT_EQ(v.kind, MessageKind::autoreply);
}

TEST(BounceFormats, Challenge) {
    EXPECT_EQ(classify("challenge-tmda.eml").kind, MessageKind::challenge);
}

TEST(BounceFormats, OrdinaryMailIsNone) {
    auto c = classify("not-bounce.eml");
    EXPECT_EQ(c.kind, MessageKind::none);
    EXPECT_TRUE(c.recipients.empty());
    EXPECT_FALSE(c.original.present);
}

TEST(BounceFormats, VerpGivesTheRecipient) {
    auto without = classify("verp-nodetail.eml");
    EXPECT_TRUE(without.recipients.empty());
    auto with = classify("verp-nodetail.eml", "list-bounces+eve=rcpt.example@lists.sender.example");
    ASSERT_EQ(with.recipients.size(), 1u);
    EXPECT_EQ(with.recipients[0].address, "eve@rcpt.example");
    EXPECT_EQ(with.verp_recipient, "eve@rcpt.example");
    // Reported alongside the recipients a bounce does name.
    auto named = classify("qmail-text.eml", "list-bounces+eve=rcpt.example@lists.sender.example");
    EXPECT_EQ(named.verp_recipient, "eve@rcpt.example");
    EXPECT_EQ(named.recipients.at(0).address, "ivan@nowhere.example");
    // Not VERP: nothing decoded.
    EXPECT_TRUE(classify("qmail-text.eml", "heidi@sender.example").verp_recipient.empty());
}

TEST(BounceFormats, CrlfGivesTheSameAnswer) {
    for (const char* name :
         {"postfix-dsn.eml", "exim-text.eml", "qmail-text.eml", "exchange-delayed.eml"}) {
        std::string lf = fixture(name);
        std::string crlf;
        for (char ch : lf) {
            if (ch == '\n') crlf.push_back('\r');
            crlf.push_back(ch);
        }
        auto a = BounceClassifier{}.classify(lf, {});
        auto b = BounceClassifier{}.classify(crlf, {});
        ASSERT_EQ(a.recipients.size(), b.recipients.size()) << name;
        for (std::size_t i = 0; i < a.recipients.size(); ++i) {
            EXPECT_EQ(a.recipients[i].address, b.recipients[i].address) << name;
            EXPECT_EQ(a.recipients[i].reason, b.recipients[i].reason) << name;
            EXPECT_EQ(a.recipients[i].status, b.recipients[i].status) << name;
        }
        EXPECT_EQ(a.original.message_id, b.original.message_id) << name;
    }
}
