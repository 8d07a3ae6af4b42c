// Connection (milter/native/connection.hpp): one MTA connection's protocol state machine
// in front of a real Session and Policy, driven by packets from a fake MTA and
// checked on the exact replies it writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "backstop/base/metrics.hpp"
#include "backstop/policy/spf.hpp"
#include "backstop/state/store.hpp"
#include "connection.hpp"
#include "dsn_report.hpp"
#include "engine_support.hpp"
#include "policy_holder.hpp"
#include "protocol.hpp"

namespace {

using namespace backstop;
using namespace backstop::engine_test;
namespace proto = backstop::milter::proto;

// The steps and actions the filter asks for when the MTA offers them all.
constexpr std::uint32_t kWantedActions = proto::action::change_from | proto::action::add_rcpt |
                                         proto::action::del_rcpt | proto::action::add_headers |
                                         proto::action::change_headers;
constexpr std::uint32_t kWantedSteps = proto::step::no_helo | proto::step::no_unknown |
                                       proto::step::no_data | proto::step::no_reply_connect |
                                       proto::step::no_reply_header | proto::step::no_reply_eoh |
                                       proto::step::no_reply_body;

struct Negotiated {
    std::uint32_t version = 0, actions = 0, steps = 0;
    std::vector<std::pair<std::uint32_t, std::string>> symbols;
    std::size_t size = 0;  // of the reply data
};

// Any checker will do: the test only asks whether one is configured.
class StubSpf final : public SpfChecker {
  public:
    SpfVerdict check(std::string_view, UnixTime) const override { return SpfVerdict::fail; }
};

class MilterConnection : public ::testing::Test {
  protected:
    TempDir dir;
    Config config = base_config(dir);
    FixedClock clock{kNow};
    Metrics metrics;
    milter::PolicyHolder holder;
    std::unique_ptr<milter::Connection> conn;
    proto::PacketReader reader;  // the filter's side of the byte stream

    // A new connection with the current config (and the store it names).
    void start(std::shared_ptr<SpfChecker> spf = nullptr) {
        holder.set(build(config, std::move(spf)));
        auto store = open_state(config.state);
        ASSERT_TRUE(store.ok()) << store.error().message;
        holder.set_state(*store, config.state);
        conn = std::make_unique<milter::Connection>(holder, metrics, clock);
        reader = proto::PacketReader();
    }
    milter::Connection& c() {
        if (!conn) start();
        return *conn;
    }

    // Bytes from the MTA: every complete packet goes to the connection.
    std::vector<Reply> send_bytes(std::string_view bytes) {
        std::string out;
        reader.append(bytes);
        while (auto p = reader.next()) c().handle(*p, out);
        return decode(out);
    }
    std::vector<Reply> send(char command, std::string_view data = {}) {
        return send_bytes(packet(command, data));
    }

    Negotiated negotiate(std::uint32_t version = 6, std::uint32_t actions = kAllActions,
                         std::uint32_t steps = kAllSteps) {
        auto r = send('O', offer_data(version, actions, steps));
        Negotiated n;
        EXPECT_EQ(codes(r), "O");
        if (r.size() != 1 || r[0].data.size() < 12) return n;
        const std::string& d = r[0].data;
        n.size = d.size();
        n.version = get_u32(d, 0);
        n.actions = get_u32(d, 4);
        n.steps = get_u32(d, 8);
        std::string_view rest = std::string_view(d).substr(12);
        while (rest.size() >= 4) {
            std::uint32_t stage = get_u32(rest, 0);
            rest.remove_prefix(4);
            std::size_t nul = rest.find('\0');
            EXPECT_NE(nul, std::string_view::npos) << "symbol list without its NUL";
            n.symbols.emplace_back(stage, std::string(rest.substr(0, nul)));
            rest.remove_prefix(nul == std::string_view::npos ? rest.size() : nul + 1);
        }
        EXPECT_TRUE(rest.empty());
        return n;
    }

    std::vector<Reply> connect(const std::string& address, char family = '4') {
        return send('C', connect_data("client.example", family, 40000, address));
    }
    std::vector<Reply> mail(const std::string& sender, const std::string& auth = "") {
        if (!auth.empty()) send('D', macro_data('M', {{"{auth_authen}", auth}}));
        return send('M', strings({sender}));
    }
    std::vector<Reply> rcpt(const std::string& recipient) {
        return send('R', strings({recipient}));
    }
    // Headers, end of headers and a body chunk; their replies, all concatenated.
    std::vector<Reply> content(const std::string& body = "Hello.\r\n") {
        std::vector<Reply> all;
        for (auto [n, v] : {std::pair<std::string, std::string>{"From", "alice@ours.example"},
                            {"Subject", "hi"}}) {
            auto r = send('L', strings({n, v}));
            all.insert(all.end(), r.begin(), r.end());
        }
        auto r = send('N');
        all.insert(all.end(), r.begin(), r.end());
        if (!body.empty()) {
            r = send('B', body);
            all.insert(all.end(), r.begin(), r.end());
        }
        return all;
    }
    std::vector<Reply> eom(const std::string& queue_id = "QID1", std::string_view last = {}) {
        if (!queue_id.empty()) send('D', macro_data('E', {{"i", queue_id}}));
        return send('E', last);
    }
    std::string tag(const std::string& address) {
        return *holder.get()->batv()->sign(address, kNow);
    }
};

// ---- Negotiation ----

TEST_F(MilterConnection, NegotiationWhenTheMtaOffersEverything) {
    Negotiated n = negotiate();
    EXPECT_EQ(n.version, 6u);
    EXPECT_EQ(n.actions, kWantedActions | proto::action::set_symbol_list);
    EXPECT_EQ(n.steps, kWantedSteps);
    // Symbol lists: {auth_authen} at MAIL, the queue ID i at MAIL, RCPT and end of
    // message (for the refusals' log lines), nothing elsewhere.
    std::vector<std::pair<std::uint32_t, std::string>> want = {
        {0, ""},
        {1, ""},
        {2, "i {auth_authen}"},
        {3, "i {rcpt_mailer} {rcpt_host} {rcpt_addr}"},
        {4, ""},
        {6, ""},
        {5, "i"}};
    auto sorted = [](auto v) {
        std::sort(v.begin(), v.end());
        return v;
    };
    EXPECT_EQ(sorted(n.symbols), sorted(want));
    EXPECT_FALSE(c().finished());
}

TEST_F(MilterConnection, NegotiationWithoutNoReplyFlags) {
    Negotiated n = negotiate(6, kAllActions, kStepsNoNr);
    EXPECT_EQ(n.version, 6u);
    EXPECT_EQ(n.steps, proto::step::no_helo | proto::step::no_unknown | proto::step::no_data);
    EXPECT_EQ(n.actions, kWantedActions | proto::action::set_symbol_list);
}

TEST_F(MilterConnection, NegotiationWithoutSetSymList) {
    Negotiated n = negotiate(6, kAllActions & ~proto::action::set_symbol_list, kAllSteps);
    EXPECT_EQ(n.actions, kWantedActions);
    EXPECT_EQ(n.steps, kWantedSteps);
    EXPECT_TRUE(n.symbols.empty());
    EXPECT_EQ(n.size, 12u);
}

TEST_F(MilterConnection, NegotiationVersion2) {
    Negotiated n = negotiate(2, 0x1f, 0x7f);
    EXPECT_EQ(n.version, 2u);
    EXPECT_EQ(n.actions, 0x1du);  // no CHGFROM in version 2
    EXPECT_EQ(n.steps, proto::step::no_helo);
    EXPECT_TRUE(n.symbols.empty());
    EXPECT_EQ(n.size, 12u);
    // SETSYMLIST offered, whatever the version, gets the lists, as from libmilter
    // (the offer is what counts; found by the differential test).
    start();
    EXPECT_FALSE(negotiate(2, kAllActions, kAllSteps).symbols.empty());
}

// An offer of none is version 1's actions and steps, as libmilter reads it: of
// those, backstop takes adding headers and recipients, removing recipients and
// skipping HELO (found by the differential test).
TEST_F(MilterConnection, OfferOfNoneIsVersion1s) {
    Negotiated n = negotiate(2, 0, 0);
    EXPECT_EQ(n.actions, 0x0du);
    EXPECT_EQ(n.steps, proto::step::no_helo);
}

TEST_F(MilterConnection, NegotiationAboveVersion6AgreesOn6) {
    EXPECT_EQ(negotiate(7).version, 6u);
}

TEST_F(MilterConnection, BadNegotiationCloses) {
    EXPECT_TRUE(send('O', offer_data(1, kAllActions, kAllSteps)).empty());
    EXPECT_TRUE(c().finished());
    start();
    EXPECT_TRUE(send('O', "short").empty());
    EXPECT_TRUE(c().finished());
}

TEST_F(MilterConnection, CommandBeforeNegotiationCloses) {
    EXPECT_TRUE(connect("192.0.2.10").empty());
    EXPECT_TRUE(c().finished());
    // Nothing more is written, not even for a negotiation.
    EXPECT_TRUE(send('O', offer_data(6, kAllActions, kAllSteps)).empty());
    EXPECT_TRUE(mail("<a@ours.example>").empty());
    // Macros are commands too.
    start();
    EXPECT_TRUE(send('D', macro_data('C', {{"j", "mx"}})).empty());
    EXPECT_TRUE(c().finished());
}

TEST_F(MilterConnection, UnknownCommandCloses) {
    negotiate();
    connect("192.0.2.10");
    EXPECT_TRUE(send('Z', "whatever").empty());
    EXPECT_TRUE(c().finished());
    EXPECT_TRUE(mail("<alice@ours.example>").empty());
    start();
    negotiate();
    EXPECT_TRUE(send('\x01').empty());
    EXPECT_TRUE(c().finished());
}

TEST_F(MilterConnection, QuitCloses) {
    negotiate();
    connect("192.0.2.10");
    EXPECT_TRUE(send('Q').empty());
    EXPECT_TRUE(c().finished());
    EXPECT_TRUE(rcpt("<bob@remote.example>").empty());
}

// ---- Messages ----

TEST_F(MilterConnection, OutboundMessageGetsItsSenderSigned) {
    negotiate();
    EXPECT_TRUE(connect("192.0.2.10").empty());  // no reply to connect was agreed
    EXPECT_EQ(codes(mail("<alice@ours.example>")), "c");
    EXPECT_EQ(codes(rcpt("<bob@remote.example>")), "c");
    EXPECT_TRUE(content().empty());
    auto r = eom();
    ASSERT_EQ(codes(r), "ec");
    EXPECT_EQ(r[0].data, "<" + tag("alice@ours.example") + ">" + std::string(1, '\0'));
    EXPECT_TRUE(r[0].data.starts_with("<prvs="));
    EXPECT_TRUE(r[1].data.empty());
    EXPECT_EQ(metrics.get(Counter::batv_signed), 1u);
}

TEST_F(MilterConnection, InboundUnsignedBounceRefusedAtRcpt) {
    negotiate();
    connect("198.51.100.7");
    EXPECT_EQ(codes(mail("<>")), "c");
    auto r = rcpt("<alice@ours.example>");
    ASSERT_EQ(codes(r), "y");
    EXPECT_TRUE(r[0].data.starts_with("550 5.7.1 <alice@ours.example>: " + config.reject_text))
        << r[0].data;
    EXPECT_EQ(r[0].data.find('\0'), r[0].data.size() - 1);  // one NUL-terminated line
    EXPECT_EQ(r[0].data.find_first_of("\r\n"), std::string::npos);
}

TEST_F(MilterConnection, BounceToValidTagRewritesTheRecipient) {
    negotiate();
    connect("198.51.100.7");
    const std::string tagged = tag("alice@ours.example");
    EXPECT_EQ(codes(mail("<>")), "c");
    EXPECT_EQ(codes(rcpt("<" + tagged + ">")), "c");
    content();
    auto r = eom();
    ASSERT_EQ(codes(r), "-+c");
    EXPECT_EQ(r[0].data, "<" + tagged + ">" + std::string(1, '\0'));
    EXPECT_EQ(r[1].data, std::string("<alice@ours.example>") + '\0');
}

// Sendmail's reverse socket map has already routed a tag to its mailbox at RCPT
// ({rcpt_mailer} local, {rcpt_addr} the user): the milter leaves that recipient alone,
// since DELRCPT of the tag and ADDRCPT of the mailbox would lose a +detail address.
// A tag the MTA has not routed ({rcpt_addr} is the tag, as Postfix gives it) is rewritten.
TEST_F(MilterConnection, TagTheMtaAlreadyRoutedIsNotRewrittenAgain) {
    negotiate();
    connect("198.51.100.7");
    const std::string routed = tag("alice+list@ours.example"), given = tag("bob@ours.example");
    EXPECT_EQ(codes(mail("<>")), "c");
    send('D', macro_data('R', {{"{rcpt_mailer}", "local"},
                               {"{rcpt_host}", ""},
                               {"{rcpt_addr}", "alice+list"}}));
    EXPECT_EQ(codes(rcpt("<" + routed + ">")), "c");
    send('D', macro_data('R', {{"{rcpt_mailer}", "local"},
                               {"{rcpt_host}", "ours.example"},
                               {"{rcpt_addr}", given}}));
    EXPECT_EQ(codes(rcpt("<" + given + ">")), "c");
    content();
    auto r = eom();
    ASSERT_EQ(codes(r), "-+c");
    EXPECT_EQ(r[0].data, "<" + given + ">" + std::string(1, '\0'));
    EXPECT_EQ(r[1].data, std::string("<bob@ours.example>") + '\0');
}

TEST_F(MilterConnection, ForgedVerdictHeaderRemovedByIndex) {
    negotiate();
    connect("198.51.100.7");
    mail("<carol@remote.example>");
    rcpt("<alice@ours.example>");
    send('L', strings({"X-Backstop-Result", "forged"}));
    send('L', strings({"X-Backstop-Result", "forged again"}));
    send('N');
    auto r = eom();
    ASSERT_EQ(codes(r), "mmc");
    // Highest index first, empty value: removal.
    EXPECT_EQ(r[0].data, u32(2) + "X-Backstop-Result" + std::string(2, '\0'));
    EXPECT_EQ(r[1].data, u32(1) + "X-Backstop-Result" + std::string(2, '\0'));
}

TEST_F(MilterConnection, NoReplyStepsAreAnsweredOnlyWhenNoReplyWasNotAgreed) {
    negotiate();  // NR for connect, header, end of headers, body
    EXPECT_TRUE(connect("192.0.2.10").empty());
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    EXPECT_TRUE(send('L', strings({"Subject", "x"})).empty());
    EXPECT_TRUE(send('N').empty());
    EXPECT_TRUE(send('B', "body").empty());
    EXPECT_EQ(codes(eom()), "ec");

    start();
    negotiate(6, kAllActions, kStepsNoNr);
    EXPECT_EQ(codes(connect("192.0.2.10")), "c");
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    EXPECT_EQ(codes(send('L', strings({"Subject", "x"}))), "c");
    EXPECT_EQ(codes(send('N')), "c");
    EXPECT_EQ(codes(send('B', "body")), "c");
    EXPECT_EQ(codes(eom()), "ec");
    // DATA and unknown commands, should they come anyway, go on.
    EXPECT_EQ(codes(send('T')), "c");
    EXPECT_EQ(codes(send('U', strings({"XFOO"}))), "c");
}

TEST_F(MilterConnection, EndOfMessageDataIsTheLastBodyChunk) {
    // A bounce of our mail: its report is read for hard bounces to record.
    for (bool body_in_eom : {false, true}) {
        start();
        negotiate();
        connect("198.51.100.7");
        mail("<>");
        ASSERT_EQ(codes(rcpt("<" + tag("alice@ours.example") + ">")), "c");
        send('L', strings({"Content-Type",
                           "multipart/report; report-type=delivery-status; boundary=\"B\""}));
        send('L', strings({"MIME-Version", "1.0"}));
        send('N');
        auto r = eom("QID7",
                     body_in_eom ? backstop::testing::dsn_report_parts("gone@remote.example") : "");
        EXPECT_EQ(codes(r), "-+c");
        auto rec = holder.state()->bounce("gone@remote.example", kNow);
        ASSERT_TRUE(rec.ok());
        EXPECT_EQ(rec->has_value(), body_in_eom)
            << "body in the end-of-message packet: " << body_in_eom;
    }
}

// ---- Macros ----

TEST_F(MilterConnection, AuthMacroFromMailStageMakesTheClientOutbound) {
    negotiate();
    connect("198.51.100.7");  // external: inbound unless authenticated
    mail("<alice@ours.example>", "alice");
    rcpt("<bob@remote.example>");
    ASSERT_EQ(codes(eom()), "ec");
    // The next MAIL's macros come without {auth_authen}: no longer authenticated.
    send('D', macro_data('M', {{"{mail_mailer}", "esmtp"}}));
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    EXPECT_EQ(codes(eom()), "c");
    // Some MTAs name it without braces.
    send('D', macro_data('M', {{"auth_authen", "alice"}}));
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    EXPECT_EQ(codes(eom()), "ec");
    // Without authentication and from outside, nothing is signed.
    start();
    negotiate();
    connect("198.51.100.7");
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    EXPECT_EQ(codes(eom()), "c");
}

TEST_F(MilterConnection, QueueIdFromMacroInLogLines) {
    StderrCapture log(dir);
    negotiate();
    connect("192.0.2.10");
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    eom("4XYZQ12");
    connect("198.51.100.7");
    mail("<>");
    send('D', macro_data('R', {{"i", "5RCPTQ9"}}));
    rcpt("<alice@ours.example>");
    send('A');
    // No queue id known: NOQUEUE.
    start();
    negotiate();
    connect("192.0.2.10");
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    eom("");
    const std::string text = log.text();
    EXPECT_NE(text.find("4XYZQ12: direction=outbound"), std::string::npos) << text;
    EXPECT_NE(text.find("5RCPTQ9: direction=inbound client=198.51.100.7 from=<> "
                        "rcpt=<alice@ours.example> verdict=reject check=unsigned-bounce "
                        "reply=\"550 5.7.1 <alice@ours.example>: "),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("NOQUEUE: direction=outbound"), std::string::npos) << text;
}

// Postfix's smtpd knows no queue ID at MAIL and at the first RCPT, so at the next
// message's RCPT no 'i' has come yet: a refusal then is NOQUEUE, never the earlier
// message's id (libmilter forgets the macros of the later stages at each MAIL, RCPT,
// HELO and connect).
TEST_F(MilterConnection, QueueIdOfAnEarlierMessageIsNotReused) {
    StderrCapture log(dir);
    negotiate();
    connect("198.51.100.7");
    mail("<carol@remote.example>");
    rcpt("<bob@ours.example>");
    EXPECT_EQ(codes(eom("4FIRSTQ1")), "c");
    mail("<>");
    EXPECT_EQ(codes(rcpt("<alice@ours.example>")), "y");
    const std::string text = log.text();
    EXPECT_NE(text.find("4FIRSTQ1: direction=inbound"), std::string::npos) << text;
    // The first message's end-of-message line is the only one with its id.
    EXPECT_EQ(text.find("4FIRSTQ1:"), text.rfind("4FIRSTQ1:")) << text;
    EXPECT_NE(text.find("NOQUEUE: direction=inbound client=198.51.100.7 from=<> "
                        "rcpt=<alice@ours.example> verdict=reject check=unsigned-bounce"),
              std::string::npos)
        << text;
}

// Likewise a new connect forgets the MAIL-stage macros of the connection before.
TEST_F(MilterConnection, AuthOfAnEarlierConnectionIsNotReused) {
    negotiate();
    connect("198.51.100.7");
    mail("<alice@ours.example>", "alice");
    rcpt("<bob@remote.example>");
    EXPECT_EQ(codes(eom()), "ec");
    connect("198.51.100.8");  // no macro packet before this MAIL
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    EXPECT_EQ(codes(eom()), "c");
}

TEST_F(MilterConnection, QuitNewConnectionStartsAFreshSession) {
    negotiate();
    connect("192.0.2.10");
    mail("<alice@ours.example>", "alice");
    EXPECT_TRUE(c().in_message());
    EXPECT_TRUE(send('K').empty());
    EXPECT_FALSE(c().finished());
    EXPECT_FALSE(c().in_message());
    // The session is gone: a MAIL before the next connect tempfails.
    auto r = mail("<alice@ours.example>");
    ASSERT_EQ(codes(r), "y");
    EXPECT_TRUE(r[0].data.starts_with("451 4.3.0 ")) << r[0].data;
    // A new connection from outside: neither the old client nor its auth carries over.
    connect("198.51.100.7");
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    EXPECT_EQ(codes(eom()), "c");
    // No new negotiation is needed after QUIT_NC.
    send('K');
    connect("192.0.2.10");
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    EXPECT_EQ(codes(eom()), "ec");
}

TEST_F(MilterConnection, CommandsWithoutConnectAreTempfailed) {
    negotiate();
    for (auto r : {mail("<alice@ours.example>"), rcpt("<bob@remote.example>"), eom()}) {
        ASSERT_EQ(codes(r), "y");
        EXPECT_EQ(r[0].data, std::string("451 4.3.0 backstop: temporary internal error, try again "
                                         "later") +
                                 '\0');
    }
    EXPECT_FALSE(c().in_message());
    EXPECT_FALSE(c().finished());
    EXPECT_EQ(metrics.get(Counter::errors), 3u);
    // Header, end of headers and body may not be answered: nothing is written.
    EXPECT_TRUE(send('L', strings({"Subject", "x"})).empty());
    EXPECT_TRUE(send('N').empty());
    EXPECT_TRUE(send('B', "x").empty());
}

TEST_F(MilterConnection, MalformedConnectTempfailsTheMessage) {
    negotiate();
    EXPECT_TRUE(send('C', "no-nul").empty());  // no reply to connect was agreed
    EXPECT_EQ(codes(mail("<alice@ours.example>")), "y");
    start();
    negotiate(6, kAllActions, kStepsNoNr);
    auto r = send('C', "no-nul");
    ASSERT_EQ(codes(r), "y");
    EXPECT_TRUE(r[0].data.starts_with("451 ")) << r[0].data;
}

TEST_F(MilterConnection, MtaWithoutChangeFromTempfailsTheOutboundMessage) {
    auto n = negotiate(6, kAllActions & ~proto::action::change_from, kAllSteps);
    EXPECT_EQ(n.actions & proto::action::change_from, 0u);
    connect("192.0.2.10");
    mail("<alice@ours.example>");
    rcpt("<bob@remote.example>");
    content();
    auto r = eom();
    ASSERT_EQ(codes(r), "y");  // no CHGFROM, no accept: the message stays queued
    EXPECT_TRUE(r[0].data.starts_with("451 4.3.0 ")) << r[0].data;
    EXPECT_FALSE(c().in_message());
    // A message that needs no change goes through.
    mail("<>");
    rcpt("<bob@remote.example>");
    EXPECT_EQ(codes(eom()), "c");
}

TEST_F(MilterConnection, MtaWithoutRecipientChangesTempfailsTheRewrite) {
    negotiate(6, kAllActions & ~proto::action::add_rcpt, kAllSteps);
    connect("198.51.100.7");
    mail("<>");
    rcpt("<" + tag("alice@ours.example") + ">");
    auto r = eom();
    ASSERT_EQ(codes(r), "y");
    EXPECT_TRUE(r[0].data.starts_with("451 4.3.0 ")) << r[0].data;
}

TEST_F(MilterConnection, InMessageFromMailToEndOrAbort) {
    negotiate();
    EXPECT_FALSE(c().in_message());
    connect("192.0.2.10");
    EXPECT_FALSE(c().in_message());
    mail("<alice@ours.example>");
    EXPECT_TRUE(c().in_message());
    rcpt("<bob@remote.example>");
    content();
    EXPECT_TRUE(c().in_message());
    eom();
    EXPECT_FALSE(c().in_message());
    mail("<alice@ours.example>");
    EXPECT_TRUE(c().in_message());
    send('A');
    EXPECT_FALSE(c().in_message());
    // A new connect ends a message left open.
    mail("<alice@ours.example>");
    connect("192.0.2.11");
    EXPECT_FALSE(c().in_message());
}

TEST_F(MilterConnection, MayBlockOnlyWithAStoreOutsideOrSpf) {
    auto check = [&](bool blocking) {
        negotiate();
        EXPECT_FALSE(c().may_block('R'));  // nothing is known before connect
        connect("192.0.2.10");
        for (char command : {'O', 'D', 'C', 'H', 'M', 'T', 'L', 'N', 'B', 'A', 'Q', 'K'}) {
            EXPECT_FALSE(c().may_block(command)) << command;
        }
        EXPECT_EQ(c().may_block('R'), blocking);
        EXPECT_EQ(c().may_block('E'), blocking);
    };
    start();
    check(false);
    config.state = "sqlite:" + dir.file("state.db");
    start();
    check(true);
    config.state = "redis://127.0.0.1:1/0";  // connects lazily: no server needed here
    start();
    check(true);
    config.state = "memory";
    config.srs_spf_check = true;
    config.srs_spf_relay_address = "192.0.2.1";
    start(std::make_shared<StubSpf>());
    check(true);
}

TEST_F(MilterConnection, ReplyTextIsOneLineWithPercentDoubled) {
    config.reject_text = "no\r\nbackscatter, 100%\nsure";
    start();
    negotiate();
    connect("198.51.100.7");
    mail("<>");
    auto r = rcpt("<a%b@ours.example>");
    ASSERT_EQ(codes(r), "y");
    const std::string& text = r[0].data;
    EXPECT_EQ(text.find('\0'), text.size() - 1) << text;
    EXPECT_EQ(text.find_first_of("\r\n"), std::string::npos) << text;
    EXPECT_TRUE(text.starts_with("550 5.7.1 <a%%b@ours.example>: no  backscatter, 100%% sure"))
        << text;
    // Every '%' comes doubled.
    for (std::size_t at = text.find('%'); at != std::string::npos; at = text.find('%', at + 2)) {
        EXPECT_EQ(text[at + 1], '%') << text;
    }
}

TEST_F(MilterConnection, LongReplyTextIsBounded) {
    config.reject_text = std::string(5000, '%');
    start();
    negotiate();
    connect("198.51.100.7");
    mail("<>");
    auto r = rcpt("<alice@ours.example>");
    ASSERT_EQ(codes(r), "y");
    EXPECT_LT(r[0].data.size(), 1000u);  // an SMTP reply line is at most 512 octets + slack
}

TEST_F(MilterConnection, PacketsSplitAcrossReadsGiveTheSameReplies) {
    // The whole outbound conversation as one byte stream, fed one byte at a time.
    std::string bytes = packet('O', offer_data(6, kAllActions, kAllSteps)) +
                        packet('C', connect_data("client.example", '4', 1, "192.0.2.10")) +
                        packet('M', strings({"<alice@ours.example>"})) +
                        packet('R', strings({"<bob@remote.example>"})) +
                        packet('L', strings({"Subject", "x"})) + packet('N') +
                        packet('B', "Hello.\r\n") + packet('E');
    std::string out;
    c();
    for (char b : bytes) {
        reader.append(std::string_view(&b, 1));
        while (auto p = reader.next()) conn->handle(*p, out);
    }
    auto r = decode(out);
    ASSERT_EQ(codes(r), "Occec");
    EXPECT_EQ(r[3].data, "<" + tag("alice@ours.example") + ">" + std::string(1, '\0'));
}

}  // namespace
