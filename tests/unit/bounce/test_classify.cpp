// Classifier behaviour beyond single formats: byte caps, huge input, watermark
// status of the returned original, the milter-side buffer, reason helpers.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "backstop/bounce/classify.hpp"
#include "backstop/bounce/reason.hpp"
#include "backstop/bounce/watermark.hpp"
#include "bounce_fixture.hpp"

using namespace backstop;

namespace {

constexpr UnixTime kNow = 1772442000;

std::string with_watermark(const std::string& value) {
    std::string msg = fixture("postfix-dsn.eml");
    msg.replace(msg.find("WATERMARK_PLACEHOLDER"), 21, value);
    return msg;
}

}  // namespace

TEST(Classify, WatermarkOfReturnedOriginal) {
    Watermark w(SecretList{{"key-one"}});
    ClassifyOptions opts;
    opts.watermark = &w;
    opts.now = kNow;
    std::string good =
        w.sign("alice@sender.example", "<fixture-postfix-1@sender.example>", kNow - 3600);
    EXPECT_EQ(BounceClassifier{}.classify(with_watermark(good), opts).original.watermark,
              WatermarkStatus::valid);
    // Backscatter: a bounce of mail we never sent carries someone else's or no mark.
    std::string other = w.sign("alice@sender.example", "<forged@sender.example>", kNow - 3600);
    EXPECT_EQ(BounceClassifier{}.classify(with_watermark(other), opts).original.watermark,
              WatermarkStatus::invalid);
    opts.now = kNow + 30 * 86400;
    EXPECT_EQ(BounceClassifier{}.classify(with_watermark(good), opts).original.watermark,
              WatermarkStatus::expired);
    opts.now = kNow;
    EXPECT_EQ(BounceClassifier{}.classify(fixture("exim-text.eml"), opts).original.watermark,
              WatermarkStatus::absent);
}

TEST(Classify, WatermarkSenderFallsBackToEnvelopeRecipient) {
    // Returned originals often lack Return-Path: the bounce's envelope recipient is the sender.
    Watermark w(SecretList{{"key-one"}});
    std::string msg = with_watermark(
        w.sign("bounces+x@sender.example", "<fixture-postfix-1@sender.example>", kNow));
    msg.erase(msg.find("Return-Path: <alice@sender.example>\n"), 36);
    ClassifyOptions opts;
    opts.watermark = &w;
    opts.now = kNow;
    opts.envelope_recipient = "bounces+x@sender.example";
    EXPECT_EQ(BounceClassifier{}.classify(msg, opts).original.watermark, WatermarkStatus::valid);
}

TEST(Classify, InlineQuotedOriginalWatermark) {
    Watermark w(SecretList{{"k"}});
    std::string msg = fixture("qmail-text.eml");
    std::string mark = w.sign("heidi@sender.example", "<fixture-qmail-4@sender.example>", kNow);
    msg.insert(msg.find("Message-ID: <fixture-qmail-4"), "X-Backstop-Watermark: " + mark + "\n");
    ClassifyOptions opts;
    opts.watermark = &w;
    opts.now = kNow;
    auto c = BounceClassifier{}.classify(msg, opts);
    EXPECT_EQ(c.original.watermark, WatermarkStatus::valid);
}

TEST(Classify, ByteCapBoundsWork) {
    // 50 MB: a bounce whose returned original is huge. Classification looks at the
    // first max_bytes only and still finds the recipient in the notice.
    std::string msg = fixture("exim-text.eml") + std::string(50u << 20, 'x');
    // (truncated says the rest was never looked at; no clock needed.)
    ClassifyOptions opts;
    auto c = BounceClassifier{}.classify(msg, opts);
    EXPECT_TRUE(c.truncated);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "grace@rcpt.example");

    // A cap that cuts the notice: still no crash, and the message is reported truncated.
    opts.max_bytes = 400;
    auto cut = BounceClassifier{}.classify(fixture("postfix-dsn.eml"), opts);
    EXPECT_TRUE(cut.truncated);
}

TEST(Classify, MessageBufferCollectsUpToTheCap) {
    MessageBuffer buf(64);
    buf.add_header("From", "MAILER-DAEMON@x.example");
    buf.add_header("Subject", "Undelivered Mail Returned to Sender");
    buf.end_of_headers();
    buf.add_body("body that will not fit");
    EXPECT_TRUE(buf.truncated());
    EXPECT_EQ(buf.view().size(), 64u);
    buf.clear();
    EXPECT_TRUE(buf.view().empty());

    MessageBuffer whole;
    std::string msg = fixture("qmail-text.eml");
    std::size_t body_at = msg.find("\n\n") + 2;
    // Feed as a milter would: headers one by one, then the body in chunks.
    std::istringstream hs(msg.substr(0, body_at - 2));
    std::string line;
    while (std::getline(hs, line)) {
        auto colon = line.find(':');
        whole.add_header(line.substr(0, colon), line.substr(colon + 2));
    }
    whole.end_of_headers();
    for (std::size_t at = body_at; at < msg.size(); at += 100) whole.add_body(msg.substr(at, 100));
    auto c = BounceClassifier{}.classify(whole.view(), {});
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "ivan@nowhere.example");
}

TEST(Reason, CodesInText) {
    EXPECT_EQ(find_status_code("host said: 550 5.1.1 <a@b>"), "5.1.1");
    EXPECT_EQ(find_status_code("[192.0.2.20]: no code"), "");
    EXPECT_EQ(find_status_code("(#5.4.4)"), "5.4.4");
    EXPECT_EQ(find_status_code("550 5.7.509 Access denied"), "5.7.509");
    EXPECT_EQ(find_reply_code("host mx [192.0.2.20]: 550 5.7.0 x"), "550");
    EXPECT_EQ(find_reply_code("Date 2026 no"), "");
    EXPECT_EQ(find_reply_code("552-5.7.0 This message"), "552");
}

TEST(Reason, StatusWordsAndCommand) {
    EXPECT_EQ(bounce_reason("5.1.1", "550", "whatever"), "userunknown");
    EXPECT_EQ(bounce_reason("5.0.0", "550", "Mailbox full"), "mailboxfull");
    EXPECT_EQ(bounce_reason("", "", "Connection timed out, retry timeout exceeded"), "expired");
    EXPECT_EQ(bounce_reason("5.0.0", "550", "User unknown", "DATA"), "filtered");
    EXPECT_EQ(bounce_reason("5.0.0", "550", "User unknown", "RCPT"), "userunknown");
    EXPECT_EQ(bounce_reason("5.0.0", "554", "Access refused", "CONN"), "blocked");
    EXPECT_EQ(bounce_reason("", "", ""), "undefined");
    EXPECT_EQ(bounce_reason("4.0.0", "451", "try later"), "onhold");
    EXPECT_EQ(smtp_command_of("(in reply to RCPT TO command)"), "RCPT");
    EXPECT_EQ(smtp_command_of("after end of data:"), "DATA");
}

TEST(Reason, HardBounces) {
    EXPECT_TRUE(is_hard_bounce("userunknown", "550", "5.1.1"));
    EXPECT_TRUE(is_hard_bounce("hostunknown", "", ""));
    EXPECT_TRUE(is_hard_bounce("hasmoved", "551", "5.1.6"));
    EXPECT_TRUE(is_hard_bounce("notaccept", "556", "5.1.10"));
    EXPECT_FALSE(is_hard_bounce("notaccept", "421", "4.3.2"));
    EXPECT_FALSE(is_hard_bounce("mailboxfull", "552", "5.2.2"));
    EXPECT_FALSE(is_hard_bounce("blocked", "554", "5.7.1"));
}

TEST(Classify, HostileInputStaysFast) {
    // Shapes that would be quadratic without the recipient caps.
    std::string lines = "From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n";
    for (int i = 0; i < 40000; ++i) lines += "<u" + std::to_string(i) + "@r.example>:\n";
    std::string dsn =
        "From: MAILER-DAEMON@x.example\nContent-Type: multipart/report; boundary=b\n\n--b\n"
        "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n";
    for (int i = 0; i < 8000; ++i)
        dsn += "Final-Recipient: rfc822; same@r.example\nStatus: 5.0.0\n\n";
    std::string nested;
    for (int i = 0; i < 2000; ++i)
        nested += "Content-Type: multipart/mixed; boundary=a" + std::to_string(i) + "\n\n--a" +
                  std::to_string(i) + "\n";
    // No clock here: a shape that went quadratic would run into the test's timeout.
    for (const std::string* msg : {&lines, &dsn, &nested}) {
        auto c = BounceClassifier{}.classify(*msg, {});
        EXPECT_LE(c.recipients.size(), 256u);
    }
}

TEST(Classify, UnterminatedSesRecipientEndsTheList) {
    // Found by fuzz_classify: an Amazon SES delivery notice whose recipient string
    // never closes made the reader search on from the top of the document, adding
    // recipients until memory ran out (3 minutes, then std::bad_alloc, on 4 KB).
    const std::string msg =
        "From: MAILER-DAEMON@x.example\nSubject: Delivery\n\n"
        "{\"notificationType\":\"Delivery\",\"mail\":{\"source\":\"a@b.example\"},"
        "\"delivery\":{\"smtpResponse\":\"250 ok\",\"recipients\":[\"x@y.example\", \"cut";
    auto c = BounceClassifier{}.classify(msg, {});
    EXPECT_EQ(c.kind, MessageKind::dsn);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "x@y.example");
    // A list of thousands stays within the recipient cap.
    std::string many =
        "From: MAILER-DAEMON@x.example\n\n{\"notificationType\":\"Delivery\","
        "\"delivery\":{\"recipients\":[";
    for (int i = 0; i < 5000; ++i) many += "\"u" + std::to_string(i) + "@y.example\",";
    many += "]}}";
    EXPECT_EQ(BounceClassifier{}.classify(many, {}).recipients.size(), 256u);
}
