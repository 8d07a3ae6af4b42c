// Local submissions are outbound whatever internal-networks holds: the captured
// packets of each MTA (captured_mta.hpp) replayed into a Connection whose
// configuration does NOT count loopback as internal (internal-networks is
// 192.0.2.0/24), as on an MX that lists only its users' networks.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "backstop/base/metrics.hpp"
#include "backstop/state/store.hpp"
#include "captured_mta.hpp"
#include "connection.hpp"
#include "engine_support.hpp"
#include "policy_holder.hpp"
#include "protocol.hpp"

namespace {

using namespace backstop;
using namespace backstop::engine_test;
namespace proto = backstop::milter::proto;

class LocalSubmission : public ::testing::Test {
  protected:
    TempDir dir;
    Config config = base_config(dir);
    FixedClock clock{kNow};
    Metrics metrics;
    milter::PolicyHolder holder;

    // Replays the packets on a new connection; the replies, in order.
    std::vector<Reply> replay(const std::vector<std::string>& packets) {
        holder.set(build(config));
        holder.set_state(*open_state("memory"), "memory");
        milter::Connection conn(holder, metrics, clock);
        proto::PacketReader reader;
        std::string out;
        for (const auto& p : packets) reader.append(packet(p[0], std::string_view(p).substr(1)));
        while (auto p = reader.next()) conn.handle(*p, out);
        return decode(out);
    }
    // The new sender of the message, "" when it keeps its own.
    static std::string new_sender(const std::vector<Reply>& replies) {
        for (const auto& r : replies) {
            if (r.code == proto::reply::change_from) return split(r.data).at(0);
        }
        return "";
    }
};

TEST_F(LocalSubmission, PostfixSendmailIsSigned) {
    StderrCapture log(dir);
    auto r = replay(postfix_sendmail_submission());
    // Negotiation, MAIL, RCPT, then the new sender and continue at end of message.
    EXPECT_EQ(codes(r), "Occec");
    EXPECT_EQ(new_sender(r).rfind("<prvs=", 0), 0u) << new_sender(r);
    EXPECT_NE(log.text().find("A4146112868: direction=outbound client=local "
                              "from=<alice@ours.example> new-from=<prvs="),
              std::string::npos)
        << log.text();
}

// The same address over SMTP, with a real port: a client like any other.
TEST_F(LocalSubmission, PostfixSmtpClientOnLoopbackStaysInbound) {
    StderrCapture log(dir);
    auto r = replay(postfix_smtp_from_loopback());
    EXPECT_EQ(codes(r), "Occc");
    EXPECT_EQ(new_sender(r), "");
    EXPECT_NE(log.text().find("55A3611285B: direction=inbound client=127.0.0.1 "),
              std::string::npos)
        << log.text();
    // Outbound once loopback is internal.
    config.internal_networks = "127.0.0.1/32";
    EXPECT_EQ(new_sender(replay(postfix_smtp_from_loopback())).rfind("<prvs=", 0), 0u);
}

TEST_F(LocalSubmission, SendmailBsIsSigned) {
    auto r = replay(sendmail_bs_submission());
    EXPECT_EQ(codes(r), "Occec");
    EXPECT_EQ(new_sender(r).rfind("<prvs=", 0), 0u) << new_sender(r);
}

// Sendmail's sendmail(1) goes through its MSP, which relays over SMTP from
// 127.0.0.1: nothing tells it from another client on loopback, so it is outbound
// only when loopback is internal (documented; --check-config warns).
TEST_F(LocalSubmission, SendmailMspNeedsLoopbackInternal) {
    EXPECT_EQ(new_sender(replay(sendmail_msp_submission())), "");
    config.internal_networks = "127.0.0.1/32";
    EXPECT_EQ(new_sender(replay(sendmail_msp_submission())).rfind("<prvs=", 0), 0u);
}

// Sendmail gives the queue ID at MAIL: the refusal's log line carries it.
TEST_F(LocalSubmission, SendmailRefusalLoggedWithItsQueueId) {
    StderrCapture log(dir);
    auto r = replay(sendmail_bounce_from_outside());
    ASSERT_EQ(codes(r), "Ocy");
    EXPECT_EQ(r[2].data.rfind("550 5.7.1 <alice@ours.example>: ", 0), 0u) << r[2].data;
    EXPECT_NE(log.text().find("6B57xuPv013904: direction=inbound client=127.0.0.2 from=<> "
                              "rcpt=<alice@ours.example> verdict=reject check=unsigned-bounce "
                              "reply=\"550 5.7.1 <alice@ours.example>: "),
              std::string::npos)
        << log.text();
}

}  // namespace
