// Messages that look like bounces and are not: challenge/response requests wrapped in a
// delivery report, auto-replies sent with the null sender, spam with a bounce subject.
// Small synthetic messages, one rule each.
#include <gtest/gtest.h>

#include <string>

#include "backstop/bounce/classify.hpp"

using namespace backstop;

namespace {

Classification classify(const std::string& msg) {
    return BounceClassifier{}.classify(msg, {});
}

// A multipart/report with "Action: failed" from 'from', whose notice is 'notice'.
std::string wrapped_in_report(const std::string& from, const std::string& subject,
                              const std::string& notice) {
    return "From: " + from +
           "\n"
           "To: alice@sender.example\n"
           "Subject: " +
           subject +
           "\n"
           "MIME-Version: 1.0\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=\"cr\"\n"
           "\n"
           "--cr\n"
           "Content-Type: text/plain\n"
           "\n" +
           notice +
           "\n"
           "--cr\n"
           "Content-Type: message/delivery-status\n"
           "\n"
           "Reporting-MTA: dns; screen.rcpt.example\n"
           "\n"
           "Final-Recipient: rfc822; bob@rcpt.example\n"
           "Action: failed\n"
           "Status: 4.7.0\n"
           "\n"
           "--cr--\n";
}

}  // namespace

TEST(LookAlikes, ChallengeInADeliveryReportIsAChallenge) {
    // The screening service asks the sender to confirm; its report says "failed" only
    // because the message waits for that confirmation.
    std::string by_words =
        wrapped_in_report("Screening Service <screen@rcpt.example>", "Re: hello",
                          "Your message to bob is held until you confirm it.\n"
                          "Please click the link below to confirm that you are a person:\n"
                          "https://screen.rcpt.example/c/1234\n");
    EXPECT_EQ(classify(by_words).kind, MessageKind::challenge);
    std::string by_sender = wrapped_in_report("noreply@boxbe.com", "Re: hello",
                                              "Your message about \"hello\" is on hold.\n");
    EXPECT_EQ(classify(by_sender).kind, MessageKind::challenge);

    // A mail server's own report with the same words stays a bounce.
    auto real = classify(wrapped_in_report("MAILER-DAEMON@mx.rcpt.example",
                                           "Undelivered Mail Returned to Sender",
                                           "Please click the link below to confirm that you "
                                           "are a person before writing to bob.\n"));
    EXPECT_EQ(real.kind, MessageKind::dsn);
    ASSERT_EQ(real.recipients.size(), 1u);
    EXPECT_EQ(real.recipients[0].address, "bob@rcpt.example");
}

TEST(LookAlikes, NullSenderAutoReplyIsAnAutoReply) {
    // Auto-responders send with the null sender (RFC 3834); newsletters never do.
    std::string reply =
        "Return-Path: <>\n"
        "From: Bob <bob@rcpt.example>\n"
        "To: alice@sender.example\n"
        "Subject: Thanks for writing\n"
        "Precedence: bulk\n"
        "\n"
        "I read my mail once a week and will answer then.\n";
    auto c = classify(reply);
    EXPECT_EQ(c.kind, MessageKind::autoreply);
    ASSERT_EQ(c.about.size(), 1u);
    EXPECT_EQ(c.about[0], "bob@rcpt.example");

    std::string newsletter = reply;
    newsletter.replace(0, newsletter.find('\n'), "Return-Path: <news-bounces@rcpt.example>");
    EXPECT_EQ(classify(newsletter).kind, MessageKind::none);
}

TEST(LookAlikes, SpamWithABounceSubjectIsNone) {
    // Only the subject says "bounce": no daemon sender, no returned message, no server
    // reply. The addresses in it are no failed recipients.
    std::string spam =
        "From: Account Team <team@offers.example>\n"
        "To: alice@sender.example\n"
        "Subject: Mail delivery failed: verify your mailbox now\n"
        "\n"
        "Dear alice@sender.example,\n"
        "\n"
        "Messages for you are waiting. To release them, log in:\n"
        "  release@offers.example\n"
        "\n"
        "http://offers.example/login\n";
    auto c = classify(spam);
    EXPECT_EQ(c.kind, MessageKind::none);
    EXPECT_TRUE(c.recipients.empty());

    // The same notice quoting a server's reply is a bounce.
    std::string real = spam;
    real.replace(real.find("http://"), std::string::npos,
                 "The server said: 550 5.1.1 no such mailbox\n");
    auto r = classify(real);
    EXPECT_EQ(r.kind, MessageKind::dsn);
    ASSERT_EQ(r.recipients.size(), 1u);
    EXPECT_EQ(r.recipients[0].address, "release@offers.example");
}

TEST(LookAlikes, NullSenderRefusalIsABounce) {
    // An auto-responder used to refuse mail: null sender, Auto-Submitted, and words
    // saying the address it names does not work.
    std::string refusal =
        "Return-Path: <>\n"
        "From: <>\n"
        "To: alice@sender.example\n"
        "Auto-Submitted: auto-replied\n"
        "\n"
        "Your mail to bob@rcpt.example was not delivered: no such user here.\n";
    auto c = classify(refusal);
    ASSERT_EQ(c.kind, MessageKind::dsn) << to_string(c.kind);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "bob@rcpt.example");
    EXPECT_EQ(c.recipients[0].reason, "userunknown");

    // The same sender with an absence notice is an auto-reply.
    std::string away = refusal;
    away.replace(away.find("Your mail"), std::string::npos,
                 "I am away until Monday; write to carol@rcpt.example meanwhile.\n");
    EXPECT_EQ(classify(away).kind, MessageKind::autoreply);
}
