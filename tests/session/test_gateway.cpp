// The filtering gateway: [domains] relay (SRS toward the customer's server, the same
// as the socketmap's forward map), our MTA's own bounces (local submissions) read
// like any bounce of our mail, and [inbound] refuse-unknown-after on every store.
#include <gtest/gtest.h>

#include <cstdlib>

#include "backstop/policy/address_maps.hpp"
#include "backstop/policy/config.hpp"
#include "backstop/state/store.hpp"
#include "fake_mta.hpp"
#include "redis_server.hpp"

using namespace backstop;
using namespace backstop::testing;

namespace {

// A report as Postfix's bounce(8) writes it when the customer's server refused.
std::string report(const std::string& failed, const std::string& status,
                   const std::string& diagnostic) {
    return "From: MAILER-DAEMON@gw.ours.example (Mail Delivery System)\r\n"
           "To: carol@foreign.example\r\n"
           "Subject: Undelivered Mail Returned to Sender\r\n"
           "Auto-Submitted: auto-replied\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n"
           "\r\n"
           "--B\r\nContent-Type: text/plain\r\n\r\n"
           "I'm sorry to have to inform you that your message could not\r\n"
           "be delivered to one or more recipients.\r\n\r\n"
           "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
           "Reporting-MTA: dns; gw.ours.example\r\n\r\n"
           "Final-Recipient: rfc822; " +
           failed + "\r\nOriginal-Recipient: rfc822;" + failed +
           "\r\nAction: failed\r\nStatus: " + status +
           "\r\nRemote-MTA: dns; mx.customer.example\r\nDiagnostic-Code: smtp; " + diagnostic +
           "\r\n\r\n"
           "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
           "From: carol@foreign.example\r\nTo: " +
           failed + "\r\nMessage-ID: <m1@foreign.example>\r\n\r\n--B--\r\n";
}

class GatewayTest : public ::testing::Test {
  protected:
    TempDir dir;
    Config config = gateway_config();
    FixedClock clock{kNow};

    Config gateway_config() {
        Config c = base_config(dir);
        c.relay_domains = {"customer.example"};
        c.refuse_unknown_after = 1;
        return c;
    }
    std::string srs(const std::string& a) {
        return build(config)->srs()->forward(a, kNow)->address;
    }
    // Postfix's bounce of mail it relayed, through non_smtpd_milters.
    // Its null sender comes as an empty MAIL FROM argument (captured from Postfix 3.7).
    EndOfMessage own_bounce(StateStore& store, const std::string& rcpt, const std::string& msg,
                            Decision* at_rcpt = nullptr, const std::string& sender = "") {
        Session s(build(config), clock);
        s.set_state(&store);
        s.connect("localhost", "127.0.0.1", ClientKind::local_submission);
        s.mail(sender);
        Decision d = s.rcpt("<" + rcpt + ">");
        if (at_rcpt) *at_rcpt = d;
        return feed_message(s, msg, "QIDB");
    }
    Outcome from_outside(StateStore& store, std::vector<std::string> rcpts,
                         std::string sender = "<carol@foreign.example>") {
        Session s(build(config), clock);
        s.set_state(&store);
        s.connect("mx.foreign.example", "198.51.100.7");
        Transaction t;
        t.sender = std::move(sender);
        t.recipients = std::move(rcpts);
        return run(s, t);
    }
};

}  // namespace

TEST_F(GatewayTest, MailToRelayDomainGetsTheForwardMapsSrs) {
    auto store = *open_state("memory");
    auto policy = build(config);
    auto o = from_outside(*store, {"<alice@customer.example>"});
    ASSERT_TRUE(o.eom.new_sender.has_value()) << o.eom.log_line;
    MapAnswer map = lookup(*policy, "forward", "carol@foreign.example", kNow);
    ASSERT_EQ(map.status, MapStatus::ok);
    EXPECT_EQ(*o.eom.new_sender, map.value);
    EXPECT_EQ(o.eom.new_sender->rfind("SRS0=", 0), 0u);
    EXPECT_NE(o.eom.log_line.find("direction=inbound"), std::string::npos) << o.eom.log_line;
    EXPECT_NE(o.eom.log_line.find("new-from=<" + map.value + ">"), std::string::npos);
    EXPECT_NE(o.eom.log_line.find("srs=srs0"), std::string::npos) << o.eom.log_line;

    // Mail only to our own domains is delivered here: no SRS from the milter.
    EXPECT_FALSE(from_outside(*store, {"<bob@ours.example>"}).eom.new_sender.has_value());
    // Without the relay domain the same mail is not forwarded.
    config.relay_domains.clear();
    EXPECT_FALSE(from_outside(*store, {"<alice@customer.example>"}).eom.new_sender.has_value());
    config = gateway_config();
    // Where the forward map finds nothing, the milter changes nothing either.
    for (std::string sender : {std::string("<bob@ours.example>"), std::string("<>"),
                               "<" + srs("dave@far.example") + ">"}) {
        auto r = from_outside(*store, {"<alice@customer.example>"}, sender);
        EXPECT_FALSE(r.eom.new_sender.has_value()) << sender << ": " << r.eom.log_line;
        std::string key = sender.substr(1, sender.size() - 2);
        EXPECT_EQ(lookup(*build(config), "forward", key, kNow).status, MapStatus::notfound)
            << sender;
    }
}

TEST_F(GatewayTest, OwnBounceIsReversedClassifiedAndRecordedNotSigned) {
    auto store = *open_state("memory");
    const std::string srs_carol = srs("carol@foreign.example");
    auto eom = own_bounce(*store, srs_carol,
                          report("nobody@customer.example", "5.1.1",
                                 "550 5.1.1 <nobody@customer.example>: Recipient address "
                                 "rejected: User unknown in local recipient table"));
    EXPECT_FALSE(eom.new_sender.has_value()) << eom.log_line;
    ASSERT_EQ(eom.remove_recipients.size(), 1u) << eom.log_line;
    EXPECT_EQ(eom.remove_recipients[0], "<" + srs_carol + ">");
    ASSERT_EQ(eom.add_recipients.size(), 1u);
    EXPECT_EQ(eom.add_recipients[0], "carol@foreign.example");
    EXPECT_NE(eom.log_line.find("direction=inbound client=local from=<>"), std::string::npos)
        << eom.log_line;
    auto rec = store->bounce("nobody@customer.example", kNow);
    ASSERT_TRUE(rec.ok() && rec->has_value()) << eom.log_line;
    EXPECT_EQ((*rec)->count, 1u);
    EXPECT_EQ((*rec)->status, "5.1.1");

    // Postfix's reverse map may have rewritten the recipient before the milter sees
    // it (cleanup maps a recipient, then shows it to non_smtpd_milters): still recorded.
    auto again = own_bounce(*store, "carol@foreign.example",
                            report("nobody@customer.example", "5.1.1",
                                   "550 5.1.1 <nobody@customer.example>: User unknown"),
                            nullptr, "<>");
    EXPECT_TRUE(again.remove_recipients.empty());
    EXPECT_EQ((*store->bounce("nobody@customer.example", kNow))->count, 2u) << again.log_line;

    // Mail submitted on this host that is not a bounce is outbound, and signed.
    Session s(build(config), clock);
    s.connect("localhost", "127.0.0.1", ClientKind::local_submission);
    Transaction t;
    t.sender = "<alice@ours.example>";
    t.recipients = {"<bob@far.example>"};
    auto out = run(s, t);
    ASSERT_TRUE(out.eom.new_sender.has_value());
    EXPECT_EQ(out.eom.new_sender->rfind("prvs=", 0), 0u);
}

TEST_F(GatewayTest, OwnBounceIsNeverRefused) {
    // Postfix takes a refused recipient of its own bounce as a configuration error.
    auto store = *open_state("memory");
    ASSERT_TRUE(store->record_bounce("bob@ours.example", "5.1.1", "userunknown", kNow).ok());
    config.storm_limit = "1/10m";
    std::string forged = srs("carol@foreign.example");
    forged[5] = forged[5] == 'A' ? 'B' : 'A';  // the hash no longer verifies
    for (std::string rcpt : {forged, std::string("bob@ours.example"),
                             std::string("prvs=1234567890=bob@ours.example")}) {
        for (int i = 0; i < 2; ++i) {  // the second one is over the storm limit
            Decision d;
            auto eom =
                own_bounce(*store, rcpt, report("x@far.example", "5.1.1", "550 5.1.1 no"), &d);
            EXPECT_EQ(d.step, Step::proceed) << rcpt << ": " << d.text;
            EXPECT_EQ(eom.decision.step, Step::proceed) << eom.log_line;
        }
    }
    // The same bounce from outside is refused.
    auto o = from_outside(*store, {"<" + forged + ">"}, "<>");
    EXPECT_EQ(o.rcpts[0].step, Step::reject);
}

TEST_F(GatewayTest, SoftRefusalsRecordNothing) {
    auto store = *open_state("memory");
    const std::string to = srs("carol@foreign.example");
    own_bounce(*store, to,
               report("soft@customer.example", "4.2.2",
                      "452 4.2.2 <soft@customer.example>: mailbox full"));
    own_bounce(*store, to,
               report("policy@customer.example", "5.7.1",
                      "550 5.7.1 <policy@customer.example>: rejected by policy"));
    EXPECT_TRUE(store->bounces(kNow)->empty());
    auto o = from_outside(*store, {"<soft@customer.example>", "<policy@customer.example>"});
    EXPECT_EQ(o.rcpts[0].step, Step::proceed);
    EXPECT_EQ(o.rcpts[1].step, Step::proceed);
}

TEST_F(GatewayTest, RefuseUnknownAfterHardBounces) {
    StateOptions so;
    so.bounce_ttl = UnixTime(90) * 86400;
    auto store = *open_state("memory", so);
    config.refuse_unknown_after = 2;
    for (const char* a : {"nobody@customer.example", "gone@ours.example",
                          "postmaster@customer.example", "far@remote.example"}) {
        ASSERT_TRUE(store->record_bounce(a, "5.1.1", "userunknown", kNow).ok());
    }
    auto one = from_outside(*store, {"<nobody@customer.example>", "<alice@customer.example>"});
    EXPECT_EQ(one.rcpts[0].step, Step::proceed);  // 1 < 2

    for (const char* a : {"nobody@customer.example", "gone@ours.example",
                          "postmaster@customer.example", "far@remote.example"}) {
        ASSERT_TRUE(store->record_bounce(a, "5.1.1", "userunknown", kNow).ok());
    }
    auto o = from_outside(
        *store, {"<nobody@customer.example>", "<alice@customer.example>", "<gone@ours.example>",
                 "<postmaster@customer.example>", "<far@remote.example>"});
    ASSERT_EQ(o.rcpts.size(), 5u);
    EXPECT_EQ(o.rcpts[0].step, Step::reject);
    EXPECT_EQ(o.rcpts[0].code, "550");
    EXPECT_EQ(o.rcpts[0].xcode, "5.1.1");
    EXPECT_NE(o.rcpts[0].text.find("<nobody@customer.example>: this address was reported as "
                                   "non-existent by its own mail server (2 hard bounces"),
              std::string::npos)
        << o.rcpts[0].text;
    EXPECT_NE(o.rcpts[0].log_line.find("check=unknown-recipient"), std::string::npos)
        << o.rcpts[0].log_line;
    EXPECT_EQ(o.rcpts[1].step, Step::proceed);
    EXPECT_EQ(o.rcpts[2].step, Step::reject);   // a local recipient too
    EXPECT_EQ(o.rcpts[3].step, Step::proceed);  // exempt-recipients
    EXPECT_EQ(o.rcpts[4].step, Step::proceed);  // not ours: [outbound] suppress-after's
    EXPECT_NE(o.eom.log_line.find("exempt=exempt-recipients:postmaster@*"), std::string::npos)
        << o.eom.log_line;
    EXPECT_NE(o.eom.log_line.find("rcpts=3"), std::string::npos) << o.eom.log_line;

    // Off, it refuses nobody.
    config.refuse_unknown_after = 0;
    EXPECT_EQ(from_outside(*store, {"<nobody@customer.example>"}).rcpts[0].step, Step::proceed);
    config.refuse_unknown_after = 2;
    // 'backstop bounces forget' lifts it at once.
    ASSERT_TRUE(*store->forget("nobody@customer.example"));
    EXPECT_EQ(from_outside(*store, {"<nobody@customer.example>"}).rcpts[0].step, Step::proceed);
    // A record with no new hard bounce for bounce-expiry days is gone.
    EXPECT_EQ(from_outside(*store, {"<gone@ours.example>"}).rcpts[0].step, Step::reject);
    clock.advance(UnixTime(90) * 86400);
    EXPECT_EQ(from_outside(*store, {"<gone@ours.example>"}).rcpts[0].step, Step::proceed);
}

// One gateway host records the customer server's refusal; another refuses at RCPT.
class GatewayFleetTest : public GatewayTest {
  protected:
    void shares(const std::string& spec) {
        auto mx1 = open_state(spec);
        auto mx2 = open_state(spec);
        ASSERT_TRUE(mx1.ok()) << mx1.error().message;
        ASSERT_TRUE(mx2.ok()) << mx2.error().message;
        EXPECT_EQ(from_outside(**mx2, {"<nobody@customer.example>"}).rcpts[0].step, Step::proceed);
        own_bounce(**mx1, srs("carol@foreign.example"),
                   report("nobody@customer.example", "5.1.1",
                          "550 5.1.1 <nobody@customer.example>: User unknown"));
        auto o = from_outside(**mx2, {"<nobody@customer.example>"});
        EXPECT_EQ(o.rcpts[0].step, Step::reject) << spec;
        EXPECT_EQ(o.rcpts[0].xcode, "5.1.1");
        ASSERT_TRUE(*(*mx2)->forget("nobody@customer.example"));
        EXPECT_EQ(from_outside(**mx1, {"<nobody@customer.example>"}).rcpts[0].step, Step::proceed);
    }
};

TEST_F(GatewayFleetTest, SqliteStoreSharesRecords) {
    shares("sqlite:" + dir.path() + "/state.db");
}

TEST_F(GatewayFleetTest, RedisStoreSharesRecords) {
    // No skip: scripts/test installs redis-server; a missing one is a failed setup.
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    backstop::test::RedisServer server;
    ASSERT_TRUE(server.running());
    shares(server.spec(5));
}

TEST(GatewayConfig, RelayAndRefuseUnknownAfterParse) {
    auto c = parse_config_text(
        "[domains]\nlocal = ours.example\nrelay = customer.example, Other.example\n"
        "[inbound]\nrefuse-unknown-after = 2\n",
        "t", {});
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->relay_domains, (std::vector<std::string>{"customer.example", "Other.example"}));
    EXPECT_EQ(c->refuse_unknown_after, 2);
    EXPECT_EQ(parse_config_text("", "t", {})->refuse_unknown_after, 0);  // off by default
    // SRS off: relayed mail would fail SPF at the customer's server.
    bool warned = false;
    for (const auto& w : config_warnings(*c)) warned = warned || w.find("[domains] relay") == 0;
    EXPECT_TRUE(warned);

    auto both =
        parse_config_text("[domains]\nlocal = ours.example\nrelay = OURS.example\n", "t", {});
    ASSERT_FALSE(both.ok());
    EXPECT_NE(
        both.error().message.find("[domains] relay: 'OURS.example' is also in [domains] local"),
        std::string::npos)
        << both.error().message;
    auto srs = parse_config_text(
        "[domains]\nlocal = ours.example\nrelay = fwd.ours.example\n[srs]\nenable = true\n"
        "domain = fwd.ours.example\nsecrets = /nonexistent\n",
        "t", {});
    ASSERT_FALSE(srs.ok());
    EXPECT_NE(srs.error().message.find("is the [srs] domain"), std::string::npos)
        << srs.error().message;
    auto bad = parse_config_text("[domains]\nrelay = bob@customer.example\n", "t", {});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("is not a domain"), std::string::npos);
    EXPECT_FALSE(parse_config_text("[inbound]\nrefuse-unknown-after = -1\n", "t", {}).ok());
    EXPECT_FALSE(parse_config_text("[inbound]\nrefuse-unknown-after = many\n", "t", {}).ok());
}
