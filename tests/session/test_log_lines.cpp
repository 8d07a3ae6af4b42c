// The log lines an administrator greps: a refused recipient names client, sender,
// recipient, the check that refused it and the reply, after the queue ID (or
// NOQUEUE); tag, discard and accept verdicts name the check or the exemption that
// decided. One line per message (and per refused recipient), key=value.
#include <gtest/gtest.h>

#include "backstop/state/store.hpp"
#include "down_store.hpp"
#include "fake_mta.hpp"

using namespace backstop;
using namespace backstop::testing;

namespace {

constexpr const char* kRejectText =
    "This address did not send the message you are bouncing (backscatter refused)";

class LogLines : public ::testing::Test {
  protected:
    TempDir dir;
    Config config = base_config(dir);
    FixedClock clock{kNow};
    std::shared_ptr<StateStore> store = *open_state("memory");

    std::unique_ptr<Session> session(const std::string& client) {
        auto s = std::make_unique<Session>(build(config), clock);
        s->set_state(store.get());
        s->connect("client.example", client);
        return s;
    }
    // One bounce to one recipient from outside: the RCPT decision, queue ID QRCPT1.
    Decision bounce_rcpt(const std::string& rcpt, const std::string& sender = "<>") {
        auto s = session("198.51.100.7");
        s->mail(sender);
        return s->rcpt(rcpt, "QRCPT1");
    }
    std::string tag(const std::string& a, UnixTime when = kNow) {
        return *build(config)->batv()->sign(a, when);
    }
    std::string srs(const std::string& a, UnixTime when = kNow) {
        return build(config)->srs()->forward(a, when)->address;
    }
    Outcome send(const Transaction& t) {
        auto s = session(t.client);
        return run(*s, t);
    }
};

Transaction bounce(std::vector<std::string> rcpts) {
    Transaction t;
    t.sender = "<>";
    t.recipients = std::move(rcpts);
    return t;
}

// The value of key=... in a line ("" when absent); quoted values without quotes.
std::string field(const std::string& line, const std::string& key) {
    std::size_t at = line.find(" " + key + "=");
    if (at == std::string::npos) return "";
    at += key.size() + 2;
    if (line[at] == '"') {
        std::size_t end = line.find('"', at + 1);
        return line.substr(at + 1, end - at - 1);
    }
    return line.substr(at, line.find(' ', at) - at);
}

}  // namespace

TEST_F(LogLines, RefusedUnsignedBounceNamesClientSenderRecipientCheckAndReply) {
    Decision d = bounce_rcpt("<alice@ours.example>");
    ASSERT_EQ(d.step, Step::reject);
    EXPECT_EQ(d.log_line,
              std::string("QRCPT1: direction=inbound client=198.51.100.7 from=<> "
                          "rcpt=<alice@ours.example> verdict=reject check=unsigned-bounce "
                          "reply=\"550 5.7.1 <alice@ours.example>: ") +
                  kRejectText + " (bounce to an address we never used as a sender)\"");
}

TEST_F(LogLines, RefusalWithoutQueueIdIsNoqueue) {
    auto s = session("198.51.100.7");
    s->mail("<MAILER-DAEMON@mx.remote.example>");
    Decision d = s->rcpt("<alice@ours.example>");
    EXPECT_EQ(d.log_line.rfind("NOQUEUE: direction=inbound client=198.51.100.7 "
                               "from=<MAILER-DAEMON@mx.remote.example> rcpt=<alice@ours.example> "
                               "verdict=reject check=unsigned-bounce reply=\"550 5.7.1 ",
                               0),
              0u)
        << d.log_line;
}

TEST_F(LogLines, BadSignatureNamesWhatFailed) {
    const std::string expired = tag("alice@ours.example", kNow - 30 * 86400);
    EXPECT_EQ(field(bounce_rcpt("<" + expired + ">").log_line, "check"), "bad-signature:expired");
    EXPECT_EQ(field(bounce_rcpt("<prvs=1786000000=alice@ours.example>").log_line, "check"),
              "bad-signature:bad-hash");
    EXPECT_EQ(field(bounce_rcpt("<prvs=9786000000=alice@ours.example>").log_line, "check"),
              "bad-signature:unknown-key");
    // SRS at our SRS domain: the same words, for any sender.
    EXPECT_EQ(field(bounce_rcpt("<" + srs("v@victim.example", kNow - 40 * 86400) + ">").log_line,
                    "check"),
              "bad-signature:expired");
    Decision forged =
        bounce_rcpt("<SRS0=FAKE=2W=victim.example=v@fwd.ours.example>", "<spammer@bad.example>");
    EXPECT_EQ(field(forged.log_line, "check"), "bad-signature:bad-hash");
    EXPECT_EQ(field(forged.log_line, "from"), "<spammer@bad.example>");
    EXPECT_EQ(field(forged.log_line, "reply"),
              std::string("550 5.7.1 <SRS0=FAKE=2W=victim.example=v@fwd.ours.example>: ") +
                  kRejectText + " (SRS hash invalid)");
}

TEST_F(LogLines, LocalpartChecksAndTempfail) {
    config.localpart_deny = dir.write("deny", "^noreply$\n");
    config.valid_localparts = dir.write("valid", "alice\nnoreply\n");
    EXPECT_EQ(field(bounce_rcpt("<noreply@ours.example>").log_line, "check"), "localpart-deny");
    EXPECT_EQ(field(bounce_rcpt("<mallory@ours.example>").log_line, "check"), "invalid-localpart");
    config.unsigned_bounce = Action::tempfail;
    Decision t = bounce_rcpt("<alice@ours.example>");
    EXPECT_EQ(field(t.log_line, "verdict"), "tempfail");
    EXPECT_EQ(field(t.log_line, "reply").rfind("451 4.7.1 <alice@ours.example>: ", 0), 0u)
        << t.log_line;
}

TEST_F(LogLines, StormAndReplayRefusals) {
    config.storm_limit = "1/10m";
    const std::string tagged = tag("alice@ours.example");
    EXPECT_EQ(bounce_rcpt("<" + tagged + ">").step, Step::proceed);
    Decision storm = bounce_rcpt("<" + tagged + ">");
    EXPECT_EQ(field(storm.log_line, "check"), "storm") << storm.log_line;
    EXPECT_EQ(field(storm.log_line, "verdict"), "tempfail");

    config.storm_limit = "off";
    config.replay_limit = 1;
    store = *open_state("memory");
    EXPECT_EQ(bounce_rcpt("<" + tagged + ">").step, Step::proceed);
    Decision replay = bounce_rcpt("<" + tagged + ">");
    EXPECT_EQ(field(replay.log_line, "check"), "replay") << replay.log_line;
    EXPECT_EQ(field(replay.log_line, "rcpt"), "<" + tagged + ">");
}

TEST_F(LogLines, OutboundSuppressAndStateErrorRefusals) {
    ASSERT_TRUE(store->record_bounce("gone@remote.example", "5.1.1", "userunknown", kNow).ok());
    config.suppress_after = 1;
    config.suppress_action = Action::reject;
    auto s = session("192.0.2.10");
    s->mail("<alice@ours.example>");
    Decision d = s->rcpt("<gone@remote.example>", "QOUT1");
    EXPECT_EQ(d.log_line,
              "QOUT1: direction=outbound client=192.0.2.10 from=<alice@ours.example> "
              "rcpt=<gone@remote.example> verdict=reject check=suppress "
              "reply=\"550 5.1.1 <gone@remote.example>: hard-bounced 1 times (5.1.1 userunknown); "
              "not sent\"");

    backstop::testing::DownStore down;
    config.on_state_error = Action::tempfail;
    Session in(build(config), clock);
    in.set_state(&down);
    in.connect("client.example", "198.51.100.7");
    in.mail("<>");
    Decision t = in.rcpt("<" + tag("alice@ours.example") + ">", "QST1");
    EXPECT_EQ(field(t.log_line, "check"), "state-error") << t.log_line;
    EXPECT_EQ(field(t.log_line, "reply"), "451 4.3.0 state store unavailable, try again later");
}

TEST_F(LogLines, TagAndDiscardVerdictsNameTheCheck) {
    config.unsigned_bounce = Action::tag;
    auto tagged = send(bounce({"<alice@ours.example>"}));
    ASSERT_TRUE(tagged.reached_eom);
    EXPECT_TRUE(tagged.rcpts[0].log_line.empty());  // not refused: no RCPT line
    EXPECT_EQ(tagged.eom.log_line,
              "QID1: direction=inbound client=198.51.100.7 from=<> rcpts=1 rewritten=0 "
              "verdict=tag reason=bounce check=unsigned-bounce");

    config.bad_signature = Action::tag;
    auto two = send(bounce({"<alice@ours.example>", "<prvs=1786000000=bob@ours.example>"}));
    EXPECT_EQ(field(two.eom.log_line, "check"), "unsigned-bounce,bad-signature:bad-hash")
        << two.eom.log_line;

    config.unsigned_bounce = Action::discard;
    auto dropped = send(bounce({"<alice@ours.example>"}));
    EXPECT_EQ(field(dropped.eom.log_line, "verdict"), "discard");
    EXPECT_EQ(field(dropped.eom.log_line, "check"), "unsigned-bounce");

    // accept as the configured action: the check still decided, and is named.
    config.unsigned_bounce = Action::accept;
    auto accepted = send(bounce({"<alice@ours.example>"}));
    EXPECT_EQ(field(accepted.eom.log_line, "verdict"), "accept");
    EXPECT_EQ(field(accepted.eom.log_line, "check"), "unsigned-bounce");
}

// Sendmail's reverse socket map routes a tag (local mailer: {rcpt_addr} is the user)
// or an SRS address (esmtp: the whole address) before the milter sees it: those are
// reversed, counted and logged as such, but not removed and added again at EOM. A
// route elsewhere (Postfix gives the tag itself) leaves the milter's rewrite in place.
TEST_F(LogLines, RecipientsTheMtaRoutedAreNotRewrittenAgain) {
    Transaction t =
        bounce({"<" + tag("alice+list@ours.example") + ">",
                "<" + srs("carol@foreign.example") + ">", "<" + tag("bob@ours.example") + ">"});
    t.routes = {{"", "alice+list"},
                {"foreign.example", "carol@foreign.example"},
                {"ours.example", tag("bob@ours.example")}};
    auto o = send(t);
    ASSERT_TRUE(o.reached_eom);
    EXPECT_EQ(o.eom.remove_recipients,
              std::vector<std::string>{"<" + tag("bob@ours.example") + ">"});
    EXPECT_EQ(o.eom.add_recipients, std::vector<std::string>{"bob@ours.example"});
    EXPECT_EQ(field(o.eom.log_line, "rewritten"), "3");
    EXPECT_EQ(field(o.eom.log_line, "mta-routed"), "2");
    // The local part alone names the mailbox only for a mailer without a host.
    Transaction other = bounce({"<" + tag("alice+other@ours.example") + ">"});
    other.routes = {{"ours.example", "alice+other"}};
    o = send(other);
    EXPECT_EQ(o.eom.add_recipients, std::vector<std::string>{"alice+other@ours.example"});
    EXPECT_EQ(field(o.eom.log_line, "mta-routed"), "");
}

TEST_F(LogLines, AcceptVerdictsNameTheExemption) {
    auto pm = send(bounce({"<postmaster@ours.example>"}));
    EXPECT_EQ(pm.eom.log_line,
              "QID1: direction=inbound client=198.51.100.7 from=<> rcpts=1 rewritten=0 "
              "verdict=accept reason=bounce exempt=exempt-recipients:postmaster@*");
    // A valid tag: accepted and rewritten, no check or exemption to name.
    auto good = send(bounce({"<" + tag("alice@ours.example") + ">"}));
    EXPECT_EQ(good.eom.log_line,
              "QID1: direction=inbound client=198.51.100.7 from=<> rcpts=1 rewritten=1 "
              "verdict=accept reason=bounce");

    config.batv_exempt_senders = {"news*@ours.example"};
    config.batv_exempt_recipient_domains = {"strict.example"};
    Transaction list;
    list.client = "192.0.2.10";
    list.sender = "<newsletter@ours.example>";
    list.recipients = {"<bob@remote.example>"};
    auto l = send(list);
    EXPECT_EQ(field(l.eom.log_line, "reason"), "exempt");
    EXPECT_EQ(field(l.eom.log_line, "exempt"), "exempt-senders:news*@ours.example");
    list.sender = "<alice@ours.example>";
    list.recipients = {"<bob@Strict.example>"};
    EXPECT_EQ(field(send(list).eom.log_line, "exempt"), "exempt-recipient-domains:strict.example");
}

TEST_F(LogLines, OutboundLinesAreTokens) {
    Transaction t;
    t.client = "192.0.2.10";
    t.sender = "<alice@ours.example>";
    t.recipients = {"<bob@remote.example>"};
    auto o = send(t);
    ASSERT_TRUE(o.eom.new_sender.has_value());
    EXPECT_EQ(o.eom.log_line,
              "QID1: direction=outbound client=192.0.2.10 from=<alice@ours.example> "
              "new-from=<" +
                  *o.eom.new_sender + "> rcpts=1 verdict=accept reason=batv");
    t.sender = "<" + *o.eom.new_sender + ">";
    EXPECT_EQ(field(send(t).eom.log_line, "reason"), "already-signed");
    t.sender = "<>";
    EXPECT_EQ(field(send(t).eom.log_line, "reason"), "null-sender");
    t.sender = "<carol@foreign.example>";
    t.recipients = {"<alice@ours.example>"};
    EXPECT_EQ(field(send(t).eom.log_line, "reason"), "all-recipients-local");

    // Suppressed recipients tagged: a tag verdict naming the check.
    ASSERT_TRUE(store->record_bounce("gone@remote.example", "5.1.1", "userunknown", kNow).ok());
    config.suppress_after = 1;
    t.sender = "<alice@ours.example>";
    t.recipients = {"<gone@remote.example>"};
    auto s = send(t);
    EXPECT_EQ(field(s.eom.log_line, "verdict"), "tag") << s.eom.log_line;
    EXPECT_EQ(field(s.eom.log_line, "check"), "suppress");
}

TEST_F(LogLines, AutoReplyVerdictNamesKindWatermarkAndCheck) {
    config.unsigned_autoreply = Action::reject;
    Transaction t;
    t.sender = "<vacation@remote.example>";
    t.recipients = {"<carol@ours.example>"};
    t.headers = {{"Subject", "Out of office: hello"},
                 {"Auto-Submitted", "auto-replied"},
                 {"Message-ID", "<v1@remote.example>"}};
    auto o = send(t);
    EXPECT_EQ(o.eom.decision.step, Step::reject);
    EXPECT_EQ(field(o.eom.log_line, "verdict"), "reject");
    EXPECT_EQ(field(o.eom.log_line, "reason"), "autoreply");
    EXPECT_EQ(field(o.eom.log_line, "watermark"), "absent");
    EXPECT_EQ(field(o.eom.log_line, "check"), "unsigned-autoreply");
    EXPECT_EQ(field(o.eom.log_line, "reply").rfind("550 5.7.1 <carol@ours.example>: ", 0), 0u)
        << o.eom.log_line;
}

// Quotes and backslashes inside a quoted value are escaped, so the value ends where
// its closing quote is.
TEST_F(LogLines, QuotedValuesAreEscaped) {
    config.reject_text = "no \"backscatter\" \\ here";
    Decision d = bounce_rcpt("<alice@ours.example>");
    EXPECT_NE(d.log_line.find("reply=\"550 5.7.1 <alice@ours.example>: no \\\"backscatter\\\" "
                              "\\\\ here (bounce"),
              std::string::npos)
        << d.log_line;
}
