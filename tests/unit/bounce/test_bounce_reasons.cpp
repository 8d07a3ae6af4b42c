// Reasons and hard/soft verdicts that depend on where a bounce puts its words:
// vendor fields, transcript lines, enclosed bounces. Small synthetic messages, one
// rule each.
#include <gtest/gtest.h>

#include <string>

#include "backstop/bounce/classify.hpp"
#include "backstop/bounce/reason.hpp"

using namespace backstop;

namespace {

Classification classify(const std::string& msg) {
    return BounceClassifier{}.classify(msg, {});
}

// A multipart/report with the given notice text and recipient block.
std::string report(const std::string& notice, const std::string& recipient_block) {
    return "From: MAILER-DAEMON@mx.sender.example\n"
           "To: alice@sender.example\n"
           "Subject: Undelivered Mail Returned to Sender\n"
           "MIME-Version: 1.0\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n"
           "\n"
           "--b1\n"
           "Content-Type: text/plain\n"
           "\n" +
           notice +
           "\n"
           "--b1\n"
           "Content-Type: message/delivery-status\n"
           "\n"
           "Reporting-MTA: dns; mx.sender.example\n"
           "\n" +
           recipient_block +
           "\n"
           "--b1\n"
           "Content-Type: text/rfc822-headers\n"
           "\n"
           "From: alice@sender.example\n"
           "To: bob@rcpt.example\n"
           "Subject: hello\n"
           "Message-ID: <m1@sender.example>\n"
           "\n"
           "--b1--\n";
}

}  // namespace

TEST(BounceReasons, PowerMtaBounceCategoryNamesTheReason) {
    // "5.2.1 ... User Unknown" alone reads as a filter; PowerMTA says the mailbox is bad.
    std::string block =
        "Final-Recipient: rfc822;bob@rcpt.example\n"
        "Action: failed\n"
        "Status: 5.2.1 (mailbox disabled, not accepting messages)\n"
        "Diagnostic-Code: smtp;550 5.2.1 <bob@rcpt.example>... User Unknown\n"
        "X-PowerMTA-BounceCategory: bad-mailbox\n";
    auto c = classify(
        report("  <bob@rcpt.example>  delivery failed; will not continue trying\n", block));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "userunknown");
    EXPECT_TRUE(c.recipients[0].hard);

    // Categories that are PowerMTA's own guesses do not override the reply.
    std::string guessed = block;
    guessed.replace(guessed.find("bad-mailbox"), 11, "other");
    c = classify(report("  <bob@rcpt.example>  delivery failed\n", guessed));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "filtered");
    EXPECT_FALSE(c.recipients[0].hard);
}

TEST(BounceReasons, LabelledSmtpCommandSection) {
    // m-FILTER names the command in its own section: "user unknown" after DATA is a filter.
    std::string msg =
        "From: MAILER-DAEMON@gw.sender.example\n"
        "To: alice@sender.example\n"
        "Subject: failure notice\n"
        "\n"
        "The following address failed:\n"
        "bob@rcpt.example\n"
        "\n"
        "\n"
        "-------server message\n"
        "550 unknown user <bob@rcpt.example>\n"
        "\n"
        "-------SMTP command\n"
        "DATA\n"
        "\n"
        "-------original message\n"
        "From: alice@sender.example\n"
        "To: bob@rcpt.example\n"
        "Subject: hello\n"
        "\n"
        "hi\n";
    auto c = classify(msg);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "bob@rcpt.example");
    EXPECT_EQ(c.recipients[0].reason, "filtered");
    EXPECT_FALSE(c.recipients[0].hard);
    EXPECT_EQ(smtp_command_of("-------SMTP command RCPT TO"), "RCPT");
}

TEST(BounceReasons, RecipientTimeWordingWithoutCommandOrStatus) {
    // Without a command or status, "user unknown" may be a filter speaking; these
    // wordings are written only about missing mailboxes.
    EXPECT_EQ(bounce_reason("", "550", "550 bob@rcpt.example... No such user"), "userunknown");
    EXPECT_EQ(bounce_reason("", "", "Error: No valid recipients for this message"), "userunknown");
    EXPECT_EQ(bounce_reason("", "",
                            "Your message wasn't delivered to bob@rcpt.example because the "
                            "address couldn't be found. Check for typos"),
              "userunknown");
    // ... but after DATA they are still a filter's verdict.
    EXPECT_EQ(bounce_reason("", "550", "550 bob@rcpt.example... No such user", "DATA"), "filtered");
}

TEST(BounceReasons, UndefinedDetailStatusSaysNothingAboutTheMailbox) {
    // Status 5.0.0 adds only the class to "550 user unknown": as without a status, the
    // words alone may be a filter's.
    std::string block =
        "Final-Recipient: rfc822; bob@rcpt.example\n"
        "Action: failed\n"
        "Status: 5.0.0\n"
        "Diagnostic-Code: smtp; 550 user unknown\n";
    auto c = classify(report("<bob@rcpt.example> (unrecoverable error)\n", block));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].status, "5.0.0");
    EXPECT_EQ(c.recipients[0].reason, "filtered");
    EXPECT_FALSE(c.recipients[0].hard);
    EXPECT_EQ(bounce_reason("4.0.0", "450", "450 user unknown"), "filtered");
    // A status about the mailbox, the command, or a wording written only about
    // missing mailboxes still decide.
    EXPECT_EQ(bounce_reason("5.1.1", "550", "550 user unknown"), "userunknown");
    EXPECT_EQ(bounce_reason("5.0.0", "550", "550 user unknown", "RCPT"), "userunknown");
    EXPECT_EQ(bounce_reason("5.0.0", "550", "550 bob@rcpt.example... No such user"), "userunknown");
    // Other reasons do not depend on it.
    EXPECT_EQ(bounce_reason("5.0.0", "552", "552 mailbox full"), "mailboxfull");
}

TEST(BounceReasons, MailboxCheckedAfterData) {
    // Yahoo answers DATA with "dd" replies when the mailbox does not exist.
    std::string yahoo =
        "554 delivery error: dd This user doesn't have a rcpt.example account "
        "(bob@rcpt.example) [0] - mta1.mail.rcpt.example";
    EXPECT_EQ(bounce_reason("5.0.0", "554", yahoo, "DATA"), "userunknown");
    EXPECT_TRUE(is_hard_bounce(bounce_reason("5.0.0", "554", yahoo, "DATA"), "554", "5.0.0"));
    // Other "user unknown" replies to DATA stay a filter's verdict.
    EXPECT_EQ(bounce_reason("5.0.0", "550", "550 Unknown user bob@rcpt.example", "DATA"),
              "filtered");
}

TEST(BounceReasons, MissingHostIsNotAMissingMailbox) {
    std::string exim =
        "SMTP error from remote mail server after end of data: "
        "553 mail.sender.example does not exist";
    EXPECT_EQ(bounce_reason("", "553", exim), "hostunknown");
    EXPECT_TRUE(is_hard_bounce("hostunknown", "553", ""));
    // A mailbox that does not exist stays one.
    EXPECT_EQ(bounce_reason("", "550", "550 <bob@rcpt.example> does not exist", "RCPT"),
              "userunknown");
    EXPECT_EQ(bounce_reason("5.1.1", "550", "550 5.1.1 Mailbox does not exist"), "userunknown");
    EXPECT_EQ(bounce_reason("", "550", "550 file /var/mail/bob does not exist", "RCPT"),
              "userunknown");
}

TEST(BounceReasons, SuccessNumberInASummaryIsNoReply) {
    // The reason stands above a summary of the message; the summary's "222" is a size.
    std::string msg =
        "From: post_master@gw.rcpt.example\n"
        "To: alice@sender.example\n"
        "Subject: Undeliverable: hello\n"
        "\n"
        "Error: Invalid user address\n"
        "\n"
        "Error message below:\n"
        "550 - Requested action not taken: no such user here\n"
        "\n"
        "Message details:\n"
        "  Subject: hello\n"
        "  MAIL FROM: alice@sender.example\n"
        "  RCPT TO: bob@rcpt.example\n"
        "  Size (in bytes): 222\n"
        "  Number of lines: 2\n";
    auto c = classify(msg);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "bob@rcpt.example");
    EXPECT_EQ(c.recipients[0].reply_code, "550");
    EXPECT_EQ(c.recipients[0].action, "failed");
    EXPECT_EQ(c.recipients[0].reason, "userunknown");
    EXPECT_TRUE(c.recipients[0].hard);
}

TEST(BounceReasons, SendmailResultLinesCloseTheirTranscript) {
    // Old Sendmail: the reason of each "554 <addr>... " line stands above it; the lines
    // below belong to the next recipient.
    std::string msg =
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.sender.example>\n"
        "To: alice@sender.example\n"
        "Subject: Returned mail: User unknown\n"
        "\n"
        "   ----- Transcript of session follows -----\n"
        "While talking to mx.one.example:\n"
        ">>> MAIL From:<alice@sender.example>\n"
        "<<< 501 <alice@sender.example>... no access from mail server which is an open relay\n"
        "554 <bob@one.example>... Remote protocol error\n"
        "550 two.example (smtp)... 550 Host unknown\n"
        "554 <carol@two.example>... 550 Host unknown (Authoritative answer from name server)\n"
        "While talking to mx.three.example:\n"
        ">>> RCPT To:<dave@three.example>\n"
        "<<< 550 <dave@three.example>... User unknown\n"
        "550 <dave@three.example>... User unknown\n"
        "\n"
        "   ----- Unsent message follows -----\n"
        "From: alice@sender.example\n"
        "To: bob@one.example\n"
        "Subject: hello\n"
        "\n"
        "hi\n";
    auto c = classify(msg);
    ASSERT_EQ(c.recipients.size(), 3u);
    EXPECT_EQ(c.recipients[0].address, "bob@one.example");
    EXPECT_EQ(c.recipients[0].reason, "norelaying");
    EXPECT_FALSE(c.recipients[0].hard);
    EXPECT_EQ(c.recipients[1].address, "carol@two.example");
    EXPECT_EQ(c.recipients[1].reason, "hostunknown");
    EXPECT_TRUE(c.recipients[1].hard);
    EXPECT_EQ(c.recipients[2].address, "dave@three.example");
    EXPECT_EQ(c.recipients[2].reason, "userunknown");
    EXPECT_TRUE(c.recipients[2].hard);
}

TEST(BounceReasons, NoticeWrappingADeliveryReport) {
    // A relay's notice names nobody; the delivery report it encloses is the bounce.
    std::string inner = report("This is the mail system.\n\n<bob@rcpt.example>: user unknown\n",
                               "Final-Recipient: rfc822; bob@rcpt.example\n"
                               "Action: failed\n"
                               "Status: 5.1.1\n"
                               "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n");
    std::string msg =
        "From: Mail Delivery Subsystem <MAILER-DAEMON@relay.sender.example>\n"
        "To: notifications@relay.sender.example\n"
        "Subject: Returned mail: User unknown\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"outer\"\n"
        "\n"
        "--outer\n"
        "Content-Type: text/plain\n"
        "\n"
        "----- The following addresses had permanent delivery errors -----\n"
        "\n"
        "--outer\n"
        "Content-Type: message/rfc822\n"
        "\n" +
        inner + "\n--outer--\n";
    auto c = classify(msg);
    ASSERT_EQ(c.kind, MessageKind::dsn);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "bob@rcpt.example");
    EXPECT_EQ(c.recipients[0].status, "5.1.1");
    EXPECT_EQ(c.recipients[0].reason, "userunknown");
    EXPECT_TRUE(c.recipients[0].hard);
    EXPECT_EQ(c.original.message_id, "<m1@sender.example>");
}

// Found by fuzzing: the envelope recipient (VERP) is the outer message's; it must
// not turn an enclosed report that names nobody into a bounce.
TEST(BounceReasons, VerpDoesNotMakeAnEnclosedEmptyReportABounce) {
    std::string inner =
        "From: MAILER-DAEMON@mx.sender.example\n"
        "To: alice@sender.example\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n"
        "\n"
        "--b1\n"
        "Content-Type: text/plain\n"
        "\n"
        "Delivery failed.\n"
        "\n"
        "--b1\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.sender.example\n"
        "\n"
        "--b1--\n";
    std::string msg =
        "From: MAILER-DAEMON@relay.sender.example\n"
        "To: notifications@relay.sender.example\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"outer\"\n"
        "\n"
        "--outer\n"
        "Content-Type: text/plain\n"
        "\n"
        "See the attachment.\n"
        "\n"
        "--outer\n"
        "Content-Type: message/rfc822\n"
        "\n" +
        inner + "\n--outer--\n";
    ClassifyOptions verp;
    verp.envelope_recipient = "bounces+user=example.org@sender.example";
    auto plain = BounceClassifier{}.classify(msg, {});
    auto with_verp = BounceClassifier{}.classify(msg, verp);
    EXPECT_EQ(plain.kind, with_verp.kind)
        << to_string(plain.kind) << " vs " << to_string(with_verp.kind);
}

TEST(BounceReasons, MailingListRefusal) {
    std::string refusal =
        "From: cats-admin@lists.example.org\n"
        "To: alice@sender.example\n"
        "Subject: You alice@sender.example are not member (cats ML)\n"
        "X-MLServer: fml [fml 4.0.3 release (20011202/4.0.3)]\n"
        "\n"
        "You are not a member of this mailing list <cats@lists.example.org>.\n"
        "\n"
        "If you know the general guide of this list, please send mail with\n"
        "the mail body\n";
    auto c = classify(refusal);
    ASSERT_EQ(c.kind, MessageKind::dsn);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "cats@lists.example.org");
    EXPECT_EQ(c.recipients[0].reason, "rejected");
    EXPECT_FALSE(c.recipients[0].hard);

    // Ordinary list traffic carries the same header and is no bounce.
    std::string post =
        "From: bob@rcpt.example\n"
        "To: cats@lists.example.org\n"
        "Subject: [cats:01234] kittens\n"
        "X-MLServer: fml [fml 4.0.3 release (20011202/4.0.3)]\n"
        "\n"
        "Photos of the kittens are on the list page.\n";
    EXPECT_EQ(classify(post).kind, MessageKind::none);
}

TEST(BounceReasons, NoticeSaysTheAccountIsDisabled) {
    std::string notice =
        "The user(s) account is disabled.\n"
        "\n"
        "<bob@rcpt.example>: 550 user unknown (in reply to RCPT TO command)\n";
    std::string block =
        "Final-Recipient: rfc822; bob@rcpt.example\n"
        "Action: failed\n"
        "Status: 5.0.0\n";
    auto c = classify(report(notice, block));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "suspend");
    EXPECT_FALSE(c.recipients[0].hard);
    // Without that sentence the reply stands.
    c = classify(
        report("<bob@rcpt.example>: 550 user unknown (in reply to RCPT TO command)\n", block));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "userunknown");
    EXPECT_TRUE(c.recipients[0].hard);
}

TEST(BounceReasons, ReasonFromAnEnclosedBounceText) {
    // The relay names the recipient but no reason; the message it returns is the
    // bounce text it could not pass on.
    std::string msg =
        "From: postmaster@relay.rcpt.example\n"
        "To: alice@sender.example\n"
        "Subject: Mail could not be delivered\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"iscan\"\n"
        "\n"
        "--iscan\n"
        "Content-Type: text/plain\n"
        "\n"
        "The following mail could not be delivered.\n"
        "Reason:  Unable to deliver message to <bob@rcpt.example> (and other recipients in "
        "the same domain).\n"
        "\n"
        "--iscan\n"
        "Content-Type: message/rfc822\n"
        "\n"
        "From: alice@sender.example\n"
        "To: bob@rcpt.example\n"
        "Subject: bob@rcpt.example\n"
        "\n"
        "----- The following addresses had permanent fatal errors -----\n"
        "<bob@rcpt.example>\n"
        "\n"
        "----- Transcript of the session follows -----\n"
        "... while talking to mx.rcpt.example:\n"
        ">>> RCPT To:<bob@rcpt.example>\n"
        "<<< 550 5.1.1 <bob@rcpt.example>... Invalid recipient\n"
        "\n"
        "--iscan--\n";
    auto c = classify(msg);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "bob@rcpt.example");
    EXPECT_EQ(c.recipients[0].status, "5.1.1");
    EXPECT_EQ(c.recipients[0].reason, "userunknown");
    EXPECT_TRUE(c.recipients[0].hard);

    // An ordinary returned original is not read for reasons.
    std::string plain = msg;
    std::size_t from = plain.find("----- The following");
    plain.replace(from, plain.find("--iscan--") - from, "Hello Bob, user unknown to me.\n\n");
    c = classify(plain);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "undefined");
    EXPECT_FALSE(c.recipients[0].hard);
}

TEST(BounceReasons, TranscriptArrowsOpenNoBracket) {
    // "<<< 421 ..." must not swallow the bracketed address that follows it.
    std::string msg =
        "From: MAILER-DAEMON@mx.sender.example\n"
        "To: alice@sender.example\n"
        "Subject: Undelivered mail\n"
        "\n"
        "<<< 421 Sorry, try again later\n"
        "The server of <bob@rcpt.example> said the mailbox is full.\n";
    auto c = classify(msg);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "bob@rcpt.example");
    EXPECT_EQ(c.recipients[0].reason, "mailboxfull");
}

TEST(BounceReasons, AuNamesTheAddressOnlyForAMissingMailbox) {
    // au (KDDI) answers "550 <addr>: User unknown" for a mailbox that does not exist
    // and "550 : User unknown" when the subscriber's filter refused the mail; the
    // notice gives neither a command nor a status.
    auto notice = [](const std::string& rcpt, const std::string& reply) {
        return "From: MAILER-DAEMON@mx.sender.example\n"
               "To: alice@sender.example\n"
               "Subject: Failure Notice\n"
               "\n"
               "Sorry, we were unable to deliver your message to the following address.\n"
               "\n"
               "<" +
               rcpt + ">:\n" + reply +
               "\n"
               "\n"
               "--- Below this line is a copy of the message.\n"
               "\n"
               "From: alice@sender.example\n"
               "To: " +
               rcpt +
               "\n"
               "Subject: hello\n"
               "\n"
               "hi\n";
    };
    auto c = classify(notice("bob@ezweb.ne.jp", "550: <bob@ezweb.ne.jp>: User unknown"));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "userunknown");
    EXPECT_TRUE(c.recipients[0].hard);

    c = classify(notice("bob@ezweb.ne.jp", "550: : User unknown"));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "filtered");
    EXPECT_FALSE(c.recipients[0].hard);

    // The same reply from a server not known to make that distinction says less.
    c = classify(notice("bob@rcpt.example", "550: <bob@rcpt.example>: User unknown"));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "filtered");
    EXPECT_FALSE(c.recipients[0].hard);

    // A domain whose mail au's servers take: the DSN's Remote-MTA names them.
    c = classify(report("<bob@rcpt.example>: delivery failed\n",
                        "Final-Recipient: rfc822; bob@rcpt.example\n"
                        "Action: failed\n"
                        "Remote-MTA: dns; lsean.ezweb.ne.jp. (192.0.2.25)\n"
                        "Diagnostic-Code: smtp; 550 <bob@rcpt.example>: User unknown\n"));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "userunknown");
    EXPECT_TRUE(c.recipients[0].hard);
}

TEST(BounceReasons, DocomoUnknownUserNeedsTheCommand) {
    // NTT docomo answers "550 Unknown user" both to RCPT TO for a missing mailbox and
    // after DATA when the subscriber's reception settings refuse the sender.
    auto block = [](const std::string& rcpt, const std::string& status, const std::string& remote) {
        return "Final-Recipient: rfc822; " + rcpt + "\nAction: failed\nStatus: " + status +
               "\nRemote-MTA: dns; " + remote + "\nDiagnostic-Code: smtp; 550 Unknown user " +
               rcpt + "\n";
    };
    // No command known: not evidence of a missing mailbox.
    auto c = classify(report("The following message to <bob@docomo.ne.jp> was undeliverable.\n",
                             block("bob@docomo.ne.jp", "5.3.0", "mfsmax.docomo.ne.jp")));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "filtered");
    EXPECT_FALSE(c.recipients[0].hard);
    // After DATA: the sender was refused.
    c =
        classify(report("<bob@rcpt.example>: host mfsmax.docomo.ne.jp[192.0.2.1] said: 550 Unknown "
                        "user bob@rcpt.example (in reply to end of DATA command)\n",
                        block("bob@rcpt.example", "5.0.0", "mfsmax.docomo.ne.jp")));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "rejected");
    EXPECT_FALSE(c.recipients[0].hard);
    // In answer to RCPT TO: the mailbox does not exist.
    c =
        classify(report("<bob@docomo.ne.jp>: host mfsmax.docomo.ne.jp[192.0.2.1] said: 550 Unknown "
                        "user bob@docomo.ne.jp (in reply to RCPT TO command)\n",
                        block("bob@docomo.ne.jp", "5.0.0", "mfsmax.docomo.ne.jp")));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "userunknown");
    EXPECT_TRUE(c.recipients[0].hard);
    // Elsewhere "unknown user" is written only about missing mailboxes.
    c = classify(report("The following message to <bob@rcpt.example> was undeliverable.\n",
                        block("bob@rcpt.example", "5.3.0", "mx.rcpt.example")));
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].reason, "userunknown");
    EXPECT_TRUE(c.recipients[0].hard);
}

TEST(BounceReasons, MailboxStorageAndMessageSizeWording) {
    // The mailbox's size limit, not the message's.
    EXPECT_EQ(bounce_reason("4.0.0", "452", "452 <bob@rcpt.example> Mailbox size limit exceeded"),
              "mailboxfull");
    EXPECT_EQ(
        bounce_reason("5.0.0", "552", "552 Account <bob@rcpt.example> does not have enough space"),
        "mailboxfull");
    EXPECT_EQ(bounce_reason("5.0.0", "550", "550 Sorry, bob has too many messages stored"),
              "mailboxfull");
    // The message's size: soft, even under a status about the address.
    std::string size = "550 RCPT TO:<bob@rcpt.example> max message size exceeded";
    EXPECT_EQ(bounce_reason("5.1.1", "550", size), "mesgtoobig");
    EXPECT_FALSE(is_hard_bounce(bounce_reason("5.1.1", "550", size), "550", "5.1.1"));
    EXPECT_EQ(bounce_reason("", "552", "552 message size exceeded for bob"), "mesgtoobig");
}

TEST(BounceReasons, ContentVerdictsAreSpam) {
    // A URI blocklist judges the links in the message, a spam pattern its content:
    // neither is a block of the sending host, whatever else the reply says.
    EXPECT_EQ(bounce_reason("5.7.1", "550", "550 5.7.1 Message refused by the SURBL check"),
              "spamdetected");
    EXPECT_EQ(bounce_reason("", "553", "553 Blocked using spam pattern: bad words"),
              "spamdetected");
    EXPECT_EQ(bounce_reason("5.7.1", "550", "550 5.7.1 Refused - bulk email not accepted"),
              "spamdetected");
    EXPECT_EQ(bounce_reason("5.7.1", "550", "550 5.7.1 Sent by a mass mailer, refused"),
              "spamdetected");
}

TEST(BounceReasons, RelayRefusalsAreSoft) {
    // The server reached does not take mail for the domain: a relay refusal (a stale MX
    // or a wrong route), no evidence that the mailbox or the domain is missing.
    std::string qmail = "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)";
    EXPECT_EQ(bounce_reason("5.7.1", "553", qmail, "RCPT"), "norelaying");
    EXPECT_FALSE(is_hard_bounce(bounce_reason("5.7.1", "553", qmail, "RCPT"), "553", "5.7.1"));
    EXPECT_EQ(bounce_reason("5.7.1", "553",
                            "553 you are trying to use me as a relay, but I am not set up for that",
                            "RCPT"),
              "norelaying");
}

TEST(BounceReasons, MissingMailboxWordingAtRcpt) {
    // Spellings of "no such mailbox" in answer to RCPT TO: evidence about the mailbox.
    for (const char* reply :
         {"550 ** No mail box here for bob **", "553 sorry, rcpt refused (mail-box not found)",
          "550 BAD_RECIPIENT - see the help page",
          "550 bob@rcpt.example is not an active address"}) {
        std::string notice = std::string("<bob@rcpt.example>: host mx.rcpt.example said: ") +
                             reply + " (in reply to RCPT TO command)\n";
        auto c = classify(report(notice,
                                 "Final-Recipient: rfc822; bob@rcpt.example\n"
                                 "Action: failed\n"
                                 "Status: 5.0.0\n"));
        ASSERT_EQ(c.recipients.size(), 1u) << reply;
        EXPECT_EQ(c.recipients[0].reason, "userunknown") << reply;
        EXPECT_TRUE(c.recipients[0].hard) << reply;
    }
}

TEST(BounceReasons, SuspendedAccountUnderAStatusAboutTheAddress) {
    // The account exists and may come back: the words are more precise than 5.1.1.
    std::string r = bounce_reason("5.1.1", "550", "550 Mailbox currently suspended, try later");
    EXPECT_EQ(r, "suspend");
    EXPECT_FALSE(is_hard_bounce(r, "550", "5.1.1"));
    EXPECT_EQ(bounce_reason("5.1.1", "550", "550 5.1.1 User unknown"), "userunknown");
}

TEST(BounceReasons, StockMailboxUnavailableTextUnderAMailboxStateStatus) {
    // "Mailbox unavailable" is RFC 5321's text for any 550; under X.2.X (the state of
    // an existing mailbox) it is no missing mailbox.
    std::string stock = "550 5.2.1 Mailbox not available";
    EXPECT_EQ(bounce_reason("5.2.1", "550", stock, "RCPT"), "filtered");
    EXPECT_FALSE(is_hard_bounce(bounce_reason("5.2.1", "550", stock, "RCPT"), "550", "5.2.1"));
    // Explicit words keep their meaning under X.2.X, and the stock text alone in
    // answer to RCPT still reads as a missing mailbox.
    EXPECT_EQ(bounce_reason("5.2.1", "550", "550 5.2.1 <bob@rcpt.example>... User Unknown", "RCPT"),
              "userunknown");
    EXPECT_EQ(
        bounce_reason("", "550", "550 Requested action not taken: mailbox unavailable", "RCPT"),
        "userunknown");
}

TEST(BounceReasons, GmailStateNumberNamesTheCommand) {
    // Gmail's older notices: "(state 14)" marks the remote server's answer to RCPT TO.
    std::string msg =
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        "To: alice@sender.example\n"
        "Subject: Delivery Status Notification (Failure)\n"
        "\n"
        "Delivery to the following recipient failed permanently:\n"
        "\n"
        "     bob@rcpt.example\n"
        "\n"
        "Technical details of permanent failure:\n"
        "Google tried to deliver your message, but it was rejected by the recipient domain. "
        "The error that the other server returned was: 550 550 Unknown recipient bob (state 14).\n"
        "\n"
        "   ----- Original message -----\n"
        "\n"
        "From: alice@sender.example\n"
        "To: bob@rcpt.example\n"
        "Subject: hello\n"
        "\n"
        "hi\n";
    auto c = classify(msg);
    ASSERT_EQ(c.recipients.size(), 1u);
    EXPECT_EQ(c.recipients[0].address, "bob@rcpt.example");
    EXPECT_EQ(c.recipients[0].reason, "userunknown");
    EXPECT_TRUE(c.recipients[0].hard);
    EXPECT_EQ(smtp_command_of("550 550 Mailbox full (state 14)."), "RCPT");
}

TEST(BounceReasons, ReceivingSideFaultsAndDroppedConnections) {
    // A mail loop at the receiving side and an ambiguous name in its directory are
    // that side's configuration, not the mailbox and not the network.
    EXPECT_EQ(bounce_reason("5.0.0", "", "mail for rcpt.example loops back to myself"),
              "systemerror");
    EXPECT_EQ(bounce_reason("5.0.0", "",
                            "Recipient name bob (bob@rcpt.example) not unique. Several matches "
                            "found in the directory."),
              "systemerror");
    // A server that hangs up on the client refuses it.
    EXPECT_EQ(bounce_reason("", "", "Delivery failed: connection was dropped by remote host"),
              "blocked");
    EXPECT_EQ(bounce_reason("", "", "Could not talk to mx.rcpt.example: connection dropped"),
              "blocked");
    // ... but a delayed notice that says it will retry is about the retries.
    EXPECT_EQ(bounce_reason("", "", "Message will be retried. Connection dropped by remote host"),
              "expired");
}
