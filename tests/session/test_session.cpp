#include <gtest/gtest.h>

#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/srs.hpp"
#include "backstop/state/store.hpp"
#include "down_store.hpp"
#include "dsn_report.hpp"
#include "fake_mta.hpp"

using namespace backstop;
using namespace backstop::testing;

namespace {

class SessionTest : public ::testing::Test {
  protected:
    TempDir dir;
    Config config = base_config(dir);
    FixedClock clock{kNow};

    Outcome send(const Transaction& t) { return run_once(build(config), clock, t); }
    std::string tag(const std::string& a, UnixTime when = kNow) {
        return *build(config)->batv()->sign(a, when);
    }
    std::string srs(const std::string& a, UnixTime when = kNow) {
        return build(config)->srs()->forward(a, when)->address;
    }
};

Transaction outbound(std::string sender, std::vector<std::string> rcpts) {
    Transaction t;
    t.client = "192.0.2.10";
    t.sender = std::move(sender);
    t.recipients = std::move(rcpts);
    return t;
}

Transaction inbound(std::string sender, std::vector<std::string> rcpts) {
    Transaction t;
    t.sender = std::move(sender);
    t.recipients = std::move(rcpts);
    return t;
}

bool has_header(const EndOfMessage& e, const std::string& name,
                const std::string& value_part = "") {
    for (const auto& h : e.header_edits) {
        if (h.kind == HeaderEdit::Kind::add && h.name == name &&
            h.value.find(value_part) != std::string::npos)
            return true;
    }
    return false;
}

}  // namespace

TEST_F(SessionTest, OutboundLocalSenderIsBatvSigned) {
    auto o = send(outbound("<alice@ours.example>", {"<bob@remote.example>"}));
    ASSERT_TRUE(o.reached_eom);
    ASSERT_TRUE(o.eom.new_sender.has_value());
    EXPECT_EQ(*o.eom.new_sender,
              "prvs=1786" + o.eom.new_sender->substr(9, 6) + "=alice@ours.example");
    EXPECT_EQ(build(config)->batv()->verify(*o.eom.new_sender, kNow).status, BatvStatus::valid);
    EXPECT_NE(o.eom.log_line.find("QID1: direction=outbound"), std::string::npos) << o.eom.log_line;
    EXPECT_NE(o.eom.log_line.find("reason=batv"), std::string::npos);
}

TEST_F(SessionTest, OutboundSenderWithTrailingDotIsSignedWithoutIt) {
    // Postfix queues <alice@ours.example.> as alice@ours.example: bounces come back
    // there, so that is the address to sign.
    auto o = send(outbound("<alice@ours.example.>", {"<bob@remote.example>"}));
    ASSERT_TRUE(o.eom.new_sender.has_value()) << o.eom.log_line;
    EXPECT_EQ(o.eom.new_sender->rfind("prvs=", 0), 0u);
    EXPECT_EQ(o.eom.new_sender->substr(o.eom.new_sender->size() - 19), "=alice@ours.example");
    EXPECT_EQ(build(config)->batv()->verify(*o.eom.new_sender, kNow).status, BatvStatus::valid);
    auto srs0 = send(outbound("carol@foreign.example..", {"dave@remote.example"}));
    ASSERT_TRUE(srs0.eom.new_sender.has_value());
    EXPECT_NE(srs0.eom.new_sender->find("=foreign.example=carol@"), std::string::npos);
    // Only the dots are forgiven: other defects leave the sender alone.
    EXPECT_FALSE(send(outbound("<alice(x)@ours.example.>", {"<bob@remote.example>"}))
                     .eom.new_sender.has_value());
    auto comment = send(outbound("<alice(x)@ours.example>", {"<bob@remote.example>"}));
    EXPECT_FALSE(comment.eom.new_sender.has_value()) << *comment.eom.new_sender;
    EXPECT_NE(comment.eom.log_line.find(" from=<alice(x)@ours.example> "), std::string::npos)
        << comment.eom.log_line;
    EXPECT_FALSE(send(outbound("<alice@.>", {"<bob@remote.example>"})).eom.new_sender.has_value());
    EXPECT_FALSE(send(outbound("<alice@>", {"<bob@remote.example>"})).eom.new_sender.has_value());
}

TEST_F(SessionTest, SmtpAuthMakesAnExternalClientOutbound) {
    Transaction t = inbound("<alice@ours.example>", {"<bob@remote.example>"});
    t.auth = "alice";
    auto o = send(t);
    ASSERT_TRUE(o.eom.new_sender.has_value());
    EXPECT_EQ(o.eom.new_sender->substr(0, 5), "prvs=");
}

// A local submission (sendmail(1)) is outbound whatever internal-networks holds:
// here loopback is not internal (base_config), as on an MX that lists only its
// users' networks. Postfix's cleanup says 127.0.0.1; the engine knows it is local.
TEST_F(SessionTest, LocalSubmissionIsOutbound) {
    Session s(build(config), clock);
    s.connect("localhost", "127.0.0.1", ClientKind::local_submission);
    EXPECT_EQ(s.direction(), Direction::inbound);  // decided at MAIL
    auto o = run(s, inbound("alice@ours.example", {"bob@remote.example"}));
    EXPECT_EQ(s.direction(), Direction::outbound);
    ASSERT_TRUE(o.eom.new_sender.has_value());
    EXPECT_EQ(o.eom.new_sender->rfind("prvs=", 0), 0u);
    EXPECT_NE(o.eom.log_line.find(" direction=outbound client=local "), std::string::npos)
        << o.eom.log_line;
    // Sendmail -bs in MTA mode gives no address at all.
    Session bs(build(config), clock);
    bs.connect("localhost", "", ClientKind::local_submission);
    EXPECT_TRUE(run(bs, inbound("<alice@ours.example>", {"<bob@remote.example>"}))
                    .eom.new_sender.has_value());
}

// An SMTP client at 127.0.0.1 is a client like any other: with loopback not in
// internal-networks its mail is inbound, so nothing is signed and an unsigned
// bounce is refused.
TEST_F(SessionTest, SmtpClientOnLoopbackStaysInboundWhenLoopbackIsNotInternal) {
    for (const char* address : {"127.0.0.1", "::1"}) {
        Session s(build(config), clock);
        s.connect("[127.0.0.1]", address);
        auto o = run(s, outbound("<alice@ours.example>", {"<bob@remote.example>"}));
        EXPECT_EQ(s.direction(), Direction::inbound) << address;
        EXPECT_FALSE(o.eom.new_sender.has_value()) << address;
        EXPECT_EQ(run(s, inbound("<>", {"<alice@ours.example>"})).rcpts[0].step, Step::reject)
            << address;
    }
    // And the same client is outbound once loopback is internal.
    config.internal_networks = "127.0.0.0/8";
    Session s(build(config), clock);
    s.connect("[127.0.0.1]", "127.0.0.1");
    EXPECT_TRUE(run(s, outbound("<alice@ours.example>", {"<bob@remote.example>"}))
                    .eom.new_sender.has_value());
}

// No address and no sign of a local submission: an unknown client, inbound.
TEST_F(SessionTest, ClientWithoutAddressIsNotTakenForLocal) {
    Session s(build(config), clock);
    s.connect("unknown", "");
    auto o = run(s, outbound("<alice@ours.example>", {"<bob@remote.example>"}));
    EXPECT_FALSE(o.eom.new_sender.has_value());
    EXPECT_NE(o.eom.log_line.find(" client=unknown "), std::string::npos) << o.eom.log_line;
}

TEST_F(SessionTest, OutboundForeignSenderForwardedGetsSrs0) {
    auto o = send(outbound("<carol@foreign.example>", {"<dave@remote.example>"}));
    ASSERT_TRUE(o.eom.new_sender.has_value());
    EXPECT_EQ(o.eom.new_sender->rfind("SRS0=", 0), 0u);
    EXPECT_NE(o.eom.new_sender->find("=foreign.example=carol@fwd.ours.example"), std::string::npos);
}

TEST_F(SessionTest, OutboundSrs0SenderBecomesSrs1) {
    auto o = send(
        outbound("<SRS0=abcd=2W=a.example=u@other-forwarder.example>", {"<d@remote.example>"}));
    ASSERT_TRUE(o.eom.new_sender.has_value());
    EXPECT_EQ(o.eom.new_sender->rfind("SRS1=", 0), 0u) << *o.eom.new_sender;
}

TEST_F(SessionTest, OutboundUnchangedCases) {
    EXPECT_FALSE(send(outbound("<>", {"<d@remote.example>"})).eom.new_sender.has_value());
    // Foreign sender, every recipient local: no forwarding, no SRS.
    EXPECT_FALSE(
        send(outbound("<c@foreign.example>", {"<alice@ours.example>"})).eom.new_sender.has_value());
    // Already signed.
    EXPECT_FALSE(send(outbound("<" + tag("alice@ours.example") + ">", {"<d@remote.example>"}))
                     .eom.new_sender.has_value());
    // Our own SRS sender.
    EXPECT_FALSE(send(outbound("<" + srs("x@foreign.example") + ">", {"<d@remote.example>"}))
                     .eom.new_sender.has_value());
}

TEST_F(SessionTest, BatvExemptions) {
    config.batv_exempt_senders = {"noreply@ours.example", "@lists.ours.example"};
    config.batv_exempt_recipient_domains = {"checks-sender.example"};
    config.local_domains.push_back("lists.ours.example");
    EXPECT_FALSE(
        send(outbound("noreply@ours.example", {"d@remote.example"})).eom.new_sender.has_value());
    EXPECT_FALSE(
        send(outbound("l@lists.ours.example", {"d@remote.example"})).eom.new_sender.has_value());
    EXPECT_FALSE(
        send(outbound("alice@ours.example", {"d@remote.example", "x@checks-sender.example"}))
            .eom.new_sender.has_value());
    EXPECT_TRUE(
        send(outbound("alice@ours.example", {"d@remote.example"})).eom.new_sender.has_value());
}

TEST_F(SessionTest, SrsTooLongIsLoggedNotEmitted) {
    auto o =
        send(outbound("<" + std::string(50, 'x') + "@foreign.example>", {"<d@remote.example>"}));
    EXPECT_FALSE(o.eom.new_sender.has_value());
    EXPECT_NE(o.eom.log_line.find(" reason=srs-refused why=\"SRS local part would be 79 octets, "
                                  "RFC 5321 allows 64\""),
              std::string::npos)
        << o.eom.log_line;
}

TEST_F(SessionTest, UnsignedBounceRejectedAtRcpt) {
    auto o = send(inbound("<>", {"<alice@ours.example>"}));
    ASSERT_EQ(o.rcpts.size(), 1u);
    EXPECT_EQ(o.rcpts[0].step, Step::reject);
    EXPECT_EQ(o.rcpts[0].code, "550");
    EXPECT_EQ(o.rcpts[0].xcode, "5.7.1");
    EXPECT_EQ(o.rcpts[0].text.rfind("<alice@ours.example>: ", 0), 0u) << o.rcpts[0].text;
    EXPECT_FALSE(o.reached_eom);
}

// Postfix accepts these forms and delivers them to alice@ours.example: each must
// meet the unsigned-bounce check, not slip past it as unparseable.
TEST_F(SessionTest, UnsignedBounceInLooseFormRejected) {
    for (std::string rcpt :
         {"<alice@ours.example.>", "<alice(x)@ours.example>", "<alice@OURS.example(x)>",
          "<ali ce@ours.example>", "<ali\\ce@ours.example>", "<al:ice@ours.example>"}) {
        auto o = send(inbound("<>", {rcpt}));
        ASSERT_EQ(o.rcpts.size(), 1u);
        EXPECT_EQ(o.rcpts[0].step, Step::reject) << rcpt;
        EXPECT_EQ(o.rcpts[0].code, "550") << rcpt;
    }
}

// A valid tag counts only as we wrote it: a trailing dot makes it unsigned.
TEST_F(SessionTest, TagInLooseFormIsNotValid) {
    std::string tagged = tag("alice@ours.example");
    auto o = send(inbound("<>", {"<" + tagged + ".>"}));
    EXPECT_EQ(o.rcpts[0].step, Step::reject);
    auto s = send(inbound("<>", {"<" + srs("carol@foreign.example") + ".>"}));
    EXPECT_EQ(s.rcpts[0].step, Step::reject);
    EXPECT_TRUE(s.eom.add_recipients.empty());
}

TEST_F(SessionTest, LooseFormsKeepExemptionsAndForeignDomains) {
    auto o = send(inbound(
        "<>", {"<postmaster@ours.example.>", "<bob@remote.example.>", "<alice@ours.example.>"}));
    EXPECT_EQ(o.rcpts[0].step, Step::proceed);
    EXPECT_EQ(o.rcpts[1].step, Step::proceed);
    EXPECT_EQ(o.rcpts[2].step, Step::reject);
}

TEST_F(SessionTest, MailerDaemonSenderIsABounce) {
    auto o = send(inbound("<MAILER-DAEMON@mx.remote.example>", {"<alice@ours.example>"}));
    EXPECT_EQ(o.rcpts[0].step, Step::reject);
}

TEST_F(SessionTest, BounceToValidTagAcceptedAndRewritten) {
    std::string tagged = tag("alice@ours.example", kNow - 3 * 86400);
    auto o = send(inbound("<>", {"<" + tagged + ">"}));
    ASSERT_TRUE(o.reached_eom);
    EXPECT_EQ(o.rcpts[0].step, Step::proceed);
    EXPECT_EQ(o.eom.remove_recipients, std::vector<std::string>{"<" + tagged + ">"});
    EXPECT_EQ(o.eom.add_recipients, std::vector<std::string>{"alice@ours.example"});
    EXPECT_EQ(o.eom.decision.step, Step::proceed);
}

TEST_F(SessionTest, BounceToValidSrsRewrittenToOriginal) {
    std::string s = srs("carol@foreign.example", kNow - 86400);
    auto o = send(inbound("<>", {"<" + s + ">"}));
    ASSERT_TRUE(o.reached_eom);
    EXPECT_EQ(o.eom.add_recipients, std::vector<std::string>{"carol@foreign.example"});
}

TEST_F(SessionTest, ForgedOrExpiredTagsRejected) {
    std::string expired = tag("alice@ours.example", kNow - 30 * 86400);
    auto o = send(inbound("<>", {"<" + expired + ">"}));
    EXPECT_EQ(o.rcpts[0].step, Step::reject);
    EXPECT_NE(o.rcpts[0].text.find("expired"), std::string::npos) << o.rcpts[0].text;
    auto f = send(inbound("<>", {"<prvs=1786000000=alice@ours.example>"}));
    EXPECT_EQ(f.rcpts[0].step, Step::reject);
    EXPECT_NE(f.rcpts[0].text.find("bad-signature"), std::string::npos) << f.rcpts[0].text;
}

TEST_F(SessionTest, ForgedSrsIsNeverRelayed) {
    // Not a bounce: still refused, so our SRS domain is no open relay.
    auto o = send(
        inbound("<spammer@bad.example>", {"<SRS0=FAKE=2W=victim.example=v@fwd.ours.example>"}));
    EXPECT_EQ(o.rcpts[0].step, Step::reject);
    auto stale = send(inbound("<>", {"<" + srs("v@victim.example", kNow - 40 * 86400) + ">"}));
    EXPECT_EQ(stale.rcpts[0].step, Step::reject);
    EXPECT_NE(stale.rcpts[0].text.find("out of date"), std::string::npos) << stale.rcpts[0].text;
}

TEST_F(SessionTest, ForeignSrsPassesThrough) {
    auto o = send(inbound("<>", {"<SRS0=abcd=2W=a.example=u@other-forwarder.example>"}));
    EXPECT_EQ(o.rcpts[0].step, Step::proceed);
    EXPECT_TRUE(o.eom.add_recipients.empty());
}

TEST_F(SessionTest, ExemptRecipientsAlwaysAccepted) {
    auto o = send(inbound("<>", {"<postmaster@ours.example>", "<Abuse@Ours.Example>"}));
    EXPECT_EQ(o.rcpts[0].step, Step::proceed);
    EXPECT_EQ(o.rcpts[1].step, Step::proceed);
}

TEST_F(SessionTest, ActionsTempfailTagDiscardAccept) {
    config.unsigned_bounce = Action::tempfail;
    auto t = send(inbound("<>", {"<alice@ours.example>"}));
    EXPECT_EQ(t.rcpts[0].step, Step::tempfail);
    EXPECT_EQ(t.rcpts[0].code, "451");
    EXPECT_EQ(t.rcpts[0].xcode, "4.7.1");

    config.unsigned_bounce = Action::tag;
    auto g = send(inbound("<>", {"<alice@ours.example>"}));
    EXPECT_EQ(g.rcpts[0].step, Step::proceed);
    EXPECT_TRUE(
        has_header(g.eom, "X-Backstop-Result", "unsigned-bounce; rcpt=<alice@ours.example>"));

    config.unsigned_bounce = Action::discard;
    std::string good = tag("bob@ours.example");
    auto d = send(inbound("<>", {"<alice@ours.example>", "<" + good + ">"}));
    EXPECT_EQ(d.eom.decision.step, Step::proceed);  // bob still gets his bounce
    EXPECT_EQ(d.eom.remove_recipients.size(), 2u);
    auto all = send(inbound("<>", {"<alice@ours.example>"}));
    EXPECT_EQ(all.eom.decision.step, Step::discard);

    config.unsigned_bounce = Action::accept;
    auto a = send(inbound("<>", {"<alice@ours.example>"}));
    EXPECT_EQ(a.rcpts[0].step, Step::proceed);
    EXPECT_TRUE(a.eom.header_edits.empty());
}

TEST_F(SessionTest, ForgedBackstopHeadersRemoved) {
    Transaction t = inbound("<x@remote.example>", {"<alice@ours.example>"});
    t.headers.push_back({"X-Backstop-Result", "valid (forged)"});
    t.headers.push_back({"x-backstop-result", "second"});
    auto o = send(t);
    std::vector<int> removed;
    for (const auto& h : o.eom.header_edits) {
        if (h.kind == HeaderEdit::Kind::remove) removed.push_back(h.index);
    }
    EXPECT_EQ(removed, (std::vector<int>{2, 1}));  // highest index first
}

TEST_F(SessionTest, LocalpartDenyAndValidList) {
    config.localpart_deny = dir.write("deny", "^noreply$\n^bounce-\n");
    config.valid_localparts = dir.write("valid", "alice\nbob\nnoreply\n");
    config.unsigned_bounce = Action::accept;
    EXPECT_EQ(send(inbound("<>", {"<noreply@ours.example>"})).rcpts[0].step, Step::reject);
    EXPECT_EQ(send(inbound("<>", {"<bounce-77@ours.example>"})).rcpts[0].step, Step::reject);
    EXPECT_EQ(send(inbound("<>", {"<mallory@ours.example>"})).rcpts[0].step, Step::reject);
    EXPECT_EQ(send(inbound("<>", {"<Alice@ours.example>"})).rcpts[0].step, Step::proceed);
    // Non-bounces are not subject to these lists.
    EXPECT_EQ(send(inbound("<x@remote.example>", {"<mallory@ours.example>"})).rcpts[0].step,
              Step::proceed);
}

TEST_F(SessionTest, AbortKeepsConnectionAndResetsMessage) {
    Session s(build(config), clock);
    s.connect("c", "192.0.2.10");
    s.mail("<alice@ours.example>");
    s.rcpt("<d@remote.example>");
    s.abort();
    auto o = run(s, outbound("<carol@foreign.example>", {"<d@remote.example>"}));
    ASSERT_TRUE(o.eom.new_sender.has_value());
    EXPECT_EQ(o.eom.new_sender->rfind("SRS0=", 0), 0u);  // not the aborted sender's BATV
    // And a second message on the same connection.
    auto o2 = run(s, outbound("<alice@ours.example>", {"<d@remote.example>"}));
    EXPECT_EQ(o2.eom.new_sender->rfind("prvs=", 0), 0u);
}

TEST_F(SessionTest, HostileInputDoesNotReachRepliesOrLogsRaw) {
    auto o = send(inbound("<>", {"<alice@ours.example>"}));
    EXPECT_EQ(o.rcpts[0].text.find('\n'), std::string::npos);
    Session s(build(config), clock);
    s.connect("c", "198.51.100.1");
    s.mail("bad\r\nsender");
    s.rcpt("<alice@ours.example>");
    auto e = s.end_of_message("Q\nX");
    EXPECT_EQ(e.log_line.find('\n'), std::string::npos) << e.log_line;
    EXPECT_EQ(e.log_line.find('\r'), std::string::npos);
}

TEST_F(SessionTest, ManyRecipients) {
    std::vector<std::string> rcpts;
    for (int i = 0; i < 10000; ++i) rcpts.push_back("<u" + std::to_string(i) + "@remote.example>");
    auto o = send(outbound("<alice@ours.example>", rcpts));
    EXPECT_TRUE(o.eom.new_sender.has_value());
}

TEST(ConfigFile, UnknownKeysAndBadValuesNameTheLine) {
    TempDir dir;
    auto bad =
        parse_config(dir.write("a.conf", "socket = inet:1@127.0.0.1\n[srs]\ndomian = x\n"), {});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("a.conf:3: unknown key 'domian' in [srs]"),
              std::string::npos)
        << bad.error().message;
    auto value = parse_config(dir.write("b.conf", "[inbound]\nunsigned-bounce = bounce\n"), {});
    ASSERT_FALSE(value.ok());
    EXPECT_NE(value.error().message.find("b.conf:2: unsigned-bounce"), std::string::npos)
        << value.error().message;
    auto dup = parse_config(dir.write("c.conf", "log-level = info\nlog-level = debug\n"), {});
    EXPECT_FALSE(dup.ok());
}

TEST(ConfigFile, CommandLineWinsAndSectionsMapToDottedNames) {
    TempDir dir;
    auto c = parse_config(dir.write("a.conf", "[batv]\nlifetime = 9\n[srs]\nmax-age = 10\n"),
                          {"--batv.lifetime", "3"});
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->batv_lifetime, 3);
    EXPECT_EQ(c->srs_max_age, 10);
    EXPECT_FALSE(parse_config("", {"--srs.nope", "1"}).ok());
    EXPECT_FALSE(parse_config("", {"stray"}).ok());
    EXPECT_TRUE(parse_config("", {"--foreground", "--srs.max-age", "5"}).ok());
    EXPECT_FALSE(parse_config("", {"--watermark.header", "Bad Name"}).ok());
}

TEST(ConfigFile, PolicyRefusesInsecureKeyFile) {
    TempDir dir;
    Config c = base_config(dir);
    c.srs_secrets = dir.write("open.secrets", "s\n", 0644);
    auto p = Policy::build(c);
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.error().message.find("[srs] secrets"), std::string::npos);
}

TEST(AddressPatterns, Match) {
    EXPECT_TRUE(address_matches("MAILER-DAEMON@*", "mailer-daemon@mx.example"));
    EXPECT_TRUE(address_matches("postmaster", "Postmaster@ours.example"));
    EXPECT_TRUE(address_matches("@ours.example", "x@OURS.example"));
    EXPECT_TRUE(address_matches("*@ours.example", "x@ours.example"));
    EXPECT_FALSE(address_matches("*@ours.example", "x@ours.example.evil"));
    EXPECT_FALSE(address_matches("postmaster@*", "postmaster2@x"));
}

namespace {

class FakeSpf final : public SpfChecker {
  public:
    explicit FakeSpf(SpfVerdict v) : v_(v) {}
    SpfVerdict check(std::string_view, UnixTime) const override {
        ++calls;
        return v_;
    }
    mutable int calls = 0;

  private:
    SpfVerdict v_;
};

}  // namespace

TEST_F(SessionTest, SpfCheckDecidesSrs) {
    config.srs_spf_check = true;
    config.srs_spf_relay_address = "192.0.2.25";
    struct Case {
        SpfVerdict verdict;
        bool rewrite;
    };
    for (Case c : {Case{SpfVerdict::pass, false}, Case{SpfVerdict::neutral, false},
                   Case{SpfVerdict::none, false}, Case{SpfVerdict::fail, true},
                   Case{SpfVerdict::softfail, true}, Case{SpfVerdict::temperror, true},
                   Case{SpfVerdict::timeout, true}, Case{SpfVerdict::permerror, true}}) {
        auto spf = std::make_shared<FakeSpf>(c.verdict);
        auto policy = Policy::build(config, spf);
        ASSERT_TRUE(policy.ok()) << policy.error().message;
        auto o =
            run_once(*policy, clock, outbound("<carol@foreign.example>", {"<d@remote.example>"}));
        EXPECT_EQ(o.eom.new_sender.has_value(), c.rewrite) << to_string(c.verdict);
        EXPECT_EQ(spf->calls, 1);
        EXPECT_NE(
            o.eom.log_line.find(std::string(c.rewrite ? " reason=srs0" : " reason=no-srs-needed") +
                                " spf=" + to_string(c.verdict)),
            std::string::npos)
            << o.eom.log_line;
    }
}

// No DNS lookup for a sender SRS leaves as it is (already our SRS address).
TEST_F(SessionTest, SpfNotAskedWhenSrsWouldNotRewrite) {
    config.srs_spf_check = true;
    config.srs_spf_relay_address = "192.0.2.25";
    auto spf = std::make_shared<FakeSpf>(SpfVerdict::fail);
    auto policy = Policy::build(config, spf);
    ASSERT_TRUE(policy.ok()) << policy.error().message;
    std::string ours = srs("carol@foreign.example");
    auto o = run_once(*policy, clock, outbound("<" + ours + ">", {"<d@remote.example>"}));
    EXPECT_FALSE(o.eom.new_sender.has_value());
    EXPECT_EQ(spf->calls, 0) << o.eom.log_line;
}

TEST(ConfigFile, SpfCheckNeedsRelayAddress) {
    TempDir dir;
    EXPECT_FALSE(parse_config(dir.write("s.conf", "[srs]\nspf-check = true\n"), {}).ok());
    EXPECT_FALSE(
        parse_config(dir.write("t.conf", "[srs]\nspf-relay-address = not-an-ip\n"), {}).ok());
    EXPECT_TRUE(
        parse_config(
            dir.write("u.conf", "[srs]\nspf-check = true\nspf-relay-address = 2001:db8::25\n"), {})
            .ok());
}

TEST_F(SessionTest, MetricsCountWhatHappened) {
    Metrics m;
    auto policy = build(config);
    Session out(policy, clock);
    out.set_metrics(&m);
    out.connect("c", "192.0.2.10");
    run(out, outbound("<alice@ours.example>", {"<d@remote.example>"}));
    run(out, outbound("<carol@foreign.example>", {"<d@remote.example>"}));
    Session in(policy, clock);
    in.set_metrics(&m);
    in.connect("c", "198.51.100.7");
    run(in, inbound("<>", {"<alice@ours.example>"}));
    run(in, inbound("<>", {"<" + tag("alice@ours.example") + ">"}));
    run(in, inbound("<>", {"<prvs=1786000000=alice@ours.example>"}));
    EXPECT_EQ(m.get(Counter::messages_outbound), 2u);
    EXPECT_EQ(m.get(Counter::batv_signed), 1u);
    EXPECT_EQ(m.get(Counter::srs_rewritten), 1u);
    EXPECT_EQ(m.get(Counter::rejected_unsigned_bounce), 1u);
    EXPECT_EQ(m.get(Counter::rejected_bad_signature), 1u);
    EXPECT_EQ(m.get(Counter::recipients_reversed), 1u);
    EXPECT_EQ(m.get(Counter::messages_inbound), 1u);  // only one reached end of message
}

namespace {

// A minimal RFC 3464 report for the hard-bounce tests, with its message header.
std::string dsn_for(const std::string& failed) {
    return "From: MAILER-DAEMON@mx.remote.example\r\n"
           "To: alice@ours.example\r\n"
           "Subject: Undelivered Mail Returned to Sender\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n" +
           dsn_report_parts(failed);
}

}  // namespace

TEST_F(SessionTest, BounceStormLimited) {
    config.storm_limit = "3/10m";
    auto store = *open_state("memory");
    auto policy = build(config);
    std::string tagged = tag("alice@ours.example");
    std::vector<Step> steps;
    for (int i = 0; i < 5; ++i) {
        Session s(policy, clock);
        s.set_state(store.get());
        s.connect("c", "198.51.100.7");
        steps.push_back(run(s, inbound("<>", {"<" + tagged + ">"})).rcpts[0].step);
    }
    EXPECT_EQ(steps, (std::vector<Step>{Step::proceed, Step::proceed, Step::proceed, Step::tempfail,
                                        Step::tempfail}));
    clock.advance(601);  // the window clears
    Session s(policy, clock);
    s.set_state(store.get());
    s.connect("c", "198.51.100.7");
    EXPECT_EQ(run(s, inbound("<>", {"<" + tagged + ">"})).rcpts[0].step, Step::proceed);
}

TEST_F(SessionTest, BounceStormExemptAndOff) {
    config.storm_limit = "1/10m";
    config.storm_exempt = {"postmaster@*"};
    auto store = *open_state("memory");
    auto policy = build(config);
    for (int i = 0; i < 3; ++i) {
        Session s(policy, clock);
        s.set_state(store.get());
        s.connect("c", "198.51.100.7");
        EXPECT_EQ(run(s, inbound("<>", {"<postmaster@ours.example>"})).rcpts[0].step,
                  Step::proceed);
    }
    config.storm_limit = "off";
    auto off = build(config);
    for (int i = 0; i < 3; ++i) {
        Session s(off, clock);
        s.set_state(store.get());
        s.connect("c", "198.51.100.7");
        EXPECT_EQ(run(s, inbound("<>", {"<" + tag("bob@ours.example") + ">"})).rcpts[0].step,
                  Step::proceed);
    }
}

// storm-limits: a pattern's own rate wins over storm-limit; "off" lifts it.
TEST_F(SessionTest, BounceStormLimitPerRecipientAndDomain) {
    config.storm_limit = "1/10m";
    config.storm_limits = {"lists@ours.example=3/10m", "*@bulk.ours.example=off"};
    config.local_domains.push_back("bulk.ours.example");
    auto store = *open_state("memory");
    auto policy = build(config);
    auto steps_for = [&](const std::string& mailbox) {
        std::vector<Step> steps;
        for (int i = 0; i < 4; ++i) {
            Session s(policy, clock);
            s.set_state(store.get());
            s.connect("c", "198.51.100.7");
            steps.push_back(run(s, inbound("<>", {"<" + tag(mailbox) + ">"})).rcpts[0].step);
        }
        return steps;
    };
    EXPECT_EQ(steps_for("lists@ours.example"),
              (std::vector<Step>{Step::proceed, Step::proceed, Step::proceed, Step::tempfail}));
    EXPECT_EQ(steps_for("alice@ours.example"),
              (std::vector<Step>{Step::proceed, Step::tempfail, Step::tempfail, Step::tempfail}));
    EXPECT_EQ(steps_for("news@bulk.ours.example"),
              (std::vector<Step>{Step::proceed, Step::proceed, Step::proceed, Step::proceed}));
}

TEST(SessionConfig, StormLimitsAreChecked) {
    EXPECT_FALSE(parse_config_text("[inbound]\nstorm-limits = lists@x.example\n", "t", {}).ok());
    EXPECT_FALSE(parse_config_text("[inbound]\nstorm-limits = a@x.example=3/10q\n", "t", {}).ok());
    auto ok = parse_config_text("[inbound]\nstorm-limits = a@x.example=3/10m, *@y.example=off\n",
                                "t", {});
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(ok->storm_limits.size(), 2u);
    EXPECT_FALSE(parse_config_text("state = redis://127.0.0.1:70000/0\n", "t", {}).ok());
}

// replay-limit: one signed address may bring back only so many bounces; another
// tag of the same mailbox has its own count.
TEST_F(SessionTest, ReplayLimitPerSignedAddress) {
    config.storm_limit = "off";
    config.replay_limit = 2;
    auto store = *open_state("memory");
    auto policy = build(config);
    const std::string first = tag("alice@ours.example");
    std::vector<Step> steps;
    std::string text;
    for (int i = 0; i < 3; ++i) {
        Session s(policy, clock);
        s.set_state(store.get());
        s.connect("c", "198.51.100.7");
        auto o = run(s, inbound("<>", {"<" + first + ">"}));
        steps.push_back(o.rcpts[0].step);
        text = o.rcpts[0].text;
    }
    EXPECT_EQ(steps, (std::vector<Step>{Step::proceed, Step::proceed, Step::reject}));
    EXPECT_NE(text.find("already brought back 2 bounces"), std::string::npos) << text;
    clock.advance(86400);  // a tag signed the next day is a different address
    Session s(policy, clock);
    s.set_state(store.get());
    s.connect("c", "198.51.100.7");
    EXPECT_EQ(
        run(s, inbound("<>", {"<" + tag("alice@ours.example", clock.now()) + ">"})).rcpts[0].step,
        Step::proceed);
}

// Auto-replies to unsigned addresses count toward the storm limit; above it the
// storm action applies at end of message (tag adds a header, discard drops).
TEST_F(SessionTest, AutoReplyStormTagOrDiscardAtEndOfMessage) {
    config.storm_limit = "2/10m";
    config.unsigned_autoreply = Action::accept;
    for (Action act : {Action::tag, Action::discard}) {
        config.storm_action = act;
        auto store = *open_state("memory");
        auto policy = build(config);
        Transaction t = inbound("<vacation@remote.example>", {"<carol@ours.example>"});
        t.headers = {{"Subject", "Out of office: hello"},
                     {"Auto-Submitted", "auto-replied"},
                     {"Message-ID", "<v1@remote.example>"}};
        std::vector<Outcome> outs;
        for (int i = 0; i < 3; ++i) {
            Session s(policy, clock);
            s.set_state(store.get());
            s.connect("c", "198.51.100.7");
            outs.push_back(run(s, t));
        }
        for (int i = 0; i < 2; ++i) {
            EXPECT_EQ(outs[i].eom.decision.step, Step::proceed) << i;
            EXPECT_FALSE(has_header(outs[i].eom, "X-Backstop-Result", "bounce-storm")) << i;
        }
        if (act == Action::tag) {
            EXPECT_EQ(outs[2].eom.decision.step, Step::proceed);
            EXPECT_TRUE(has_header(outs[2].eom, "X-Backstop-Result",
                                   "bounce-storm; rcpt=<carol@ours.example>"));
            EXPECT_NE(outs[2].eom.log_line.find("verdict=tag"), std::string::npos);
        } else {
            EXPECT_EQ(outs[2].eom.decision.step, Step::discard);
            EXPECT_NE(outs[2].eom.log_line.find("verdict=discard"), std::string::npos);
        }
    }
}

TEST_F(SessionTest, ExpiredHardBounceNoLongerSuppresses) {
    StateOptions o;
    o.bounce_ttl = UnixTime(90) * 86400;
    auto store = *open_state("memory", o);
    ASSERT_TRUE(store->record_bounce("gone@remote.example", "5.1.1", "userunknown", kNow).ok());
    config.suppress_after = 1;
    config.suppress_action = Action::reject;
    auto policy = build(config);
    auto step = [&] {
        Session out(policy, clock);
        out.set_state(store.get());
        out.connect("c", "192.0.2.10");
        return run(out, outbound("<alice@ours.example>", {"<gone@remote.example>"})).rcpts[0].step;
    };
    EXPECT_EQ(step(), Step::reject);
    clock.advance(UnixTime(90) * 86400);
    EXPECT_EQ(step(), Step::proceed);
}

TEST_F(SessionTest, HardBounceRecordedAndSuppressed) {
    auto store = *open_state("memory");
    auto policy = build(config);
    Session in(policy, clock);
    in.set_state(store.get());
    in.connect("c", "198.51.100.7");
    Transaction t = inbound("<>", {"<" + tag("alice@ours.example") + ">"});
    t.headers.clear();
    in.mail("<>");
    ASSERT_EQ(in.rcpt(t.recipients[0]).step, Step::proceed);
    auto eom = feed_message(in, dsn_for("gone@remote.example"));
    auto rec = store->bounce("gone@remote.example", kNow);
    ASSERT_TRUE(rec.ok());
    ASSERT_TRUE(rec->has_value()) << eom.log_line;
    EXPECT_EQ((*rec)->count, 1u);
    EXPECT_EQ((*rec)->reason, "userunknown");

    // Outbound: suppress-after 1 with reject refuses the next message to that address.
    config.suppress_after = 1;
    config.suppress_action = Action::reject;
    Session out(build(config), clock);
    out.set_state(store.get());
    out.connect("c", "192.0.2.10");
    auto o = run(
        out, outbound("<alice@ours.example>", {"<gone@remote.example>", "<fine@remote.example>"}));
    EXPECT_EQ(o.rcpts[0].step, Step::reject);
    EXPECT_EQ(o.rcpts[0].xcode, "5.1.1");
    EXPECT_EQ(o.rcpts[1].step, Step::proceed);
    config.suppress_action = Action::tag;
    Session tagger(build(config), clock);
    tagger.set_state(store.get());
    tagger.connect("c", "192.0.2.10");
    auto g = run(tagger, outbound("<alice@ours.example>", {"<gone@remote.example>"}));
    EXPECT_TRUE(has_header(g.eom, "X-Backstop-Result", "suppressed; hard-bounced 1 times"));
}

TEST_F(SessionTest, OnStateErrorAcceptOrTempfail) {
    backstop::testing::DownStore broken;
    config.storm_limit = "3/10m";
    std::string tagged = tag("alice@ours.example");
    for (Action a : {Action::accept, Action::tempfail}) {
        config.on_state_error = a;
        Session s(build(config), clock);
        s.set_state(&broken);
        s.connect("c", "198.51.100.7");
        auto o = run(s, inbound("<>", {"<" + tagged + ">"}));
        EXPECT_EQ(o.rcpts[0].step, a == Action::accept ? Step::proceed : Step::tempfail);
        if (a == Action::accept) {
            EXPECT_NE(o.eom.log_line.find("state-error=\"down\""), std::string::npos)
                << o.eom.log_line;
        }
    }
}
