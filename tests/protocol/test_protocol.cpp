// Layer 3: backstop-milter as Postfix sees it, over its TCP socket. Each test starts
// the real daemon with its own config (milter_process.hpp) and speaks milter
// protocol 6 to it (milter_client.hpp). Expected tags come from the core library
// with the same fixed keys, so every assertion is on an exact value.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <latch>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "backstop/base/clock.hpp"
#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/keyring.hpp"
#include "backstop/envelope/srs.hpp"
#include "milter_client.hpp"
#include "milter_process.hpp"

namespace backstop::test {
namespace {

constexpr const char* kInternalAddr = "127.0.0.1";   // in internal-networks: outbound
constexpr const char* kExternalAddr = "192.0.2.25";  // TEST-NET-1: inbound

// A tag the daemon must accept: signed now with the test key.
std::string signed_address(const std::string& address, UnixTime at = now()) {
    auto tagged = test_signer().sign(address, at);
    EXPECT_TRUE(tagged.ok());
    return tagged.ok() ? tagged.value() : std::string();
}

Message outbound(const std::string& sender, std::vector<std::string> rcpts) {
    Message m;
    m.client_addr = kInternalAddr;
    m.client_host = "localhost";
    m.sender = angle(sender);
    for (auto& r : rcpts) m.recipients.push_back(angle(r));
    m.headers = {{"From", sender.empty() ? "MAILER-DAEMON" : sender}, {"Subject", "protocol test"}};
    return m;
}

Message inbound(const std::string& sender, std::vector<std::string> rcpts) {
    Message m = outbound(sender, std::move(rcpts));
    m.client_addr = kExternalAddr;
    m.client_host = "mx.remote.example";
    return m;
}

Message bounce_to(std::vector<std::string> rcpts) {
    Message m = inbound("", std::move(rcpts));
    m.headers = {{"From", "MAILER-DAEMON@mx.remote.example"},
                 {"Subject", "Undelivered Mail Returned to Sender"}};
    return m;
}

std::vector<std::string> stripped(const std::vector<std::string>& addresses) {
    std::vector<std::string> out;
    for (const auto& a : addresses) out.push_back(strip_angle(a));
    return out;
}

// The log lines about one message: those that begin with its queue ID once an
// optional "backstop-milter: " program prefix is removed.
std::vector<std::string> message_log_lines(const std::string& log, const std::string& queue_id) {
    std::vector<std::string> out;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("backstop-milter: ")) line.erase(0, 17);
        if (line.starts_with(queue_id + ": ")) out.push_back(line);
    }
    return out;
}

// One daemon per test, with its own config and port.
class ProtocolTest : public ::testing::Test {
  protected:
    void SetUp() override { milter_ = std::make_unique<MilterProcess>(settings()); }
    void TearDown() override {
        if (!milter_) return;  // SetUp failed: already reported
        EXPECT_TRUE(milter_->alive()) << "the daemon died during the test";
        // A clean stop, and no sanitizer report (BACKSTOP_SANITIZE builds) on the way.
        EXPECT_EQ(milter_->terminate(), 0) << "no clean exit on SIGTERM";
        auto log = milter_->log();
        EXPECT_EQ(log.find("Sanitizer"), std::string::npos);
        EXPECT_EQ(log.find("runtime error:"), std::string::npos);
        if (HasFailure()) std::cerr << "--- backstop-milter stderr ---\n" << log;
    }
    virtual MilterSettings settings() { return {}; }

    Transcript send(const Message& m) {
        auto client = milter_->client();
        auto t = client.send_message(m);
        client.quit();
        return t;
    }

    std::unique_ptr<MilterProcess> milter_;
};

// --- Outbound -------------------------------------------------------------------

TEST_F(ProtocolTest, NegotiatesVersion6WithChgfrom) {
    auto client = MilterClient::connect_tcp("127.0.0.1", milter_->port());
    auto n = client.negotiate();
    EXPECT_EQ(n.version, 6u);
    EXPECT_NE(n.actions & milter::kActChangeFrom, 0u) << "CHGFROM needs SMFIF_CHGFROM";
    EXPECT_NE(n.actions & milter::kActAddRcpt, 0u);
    EXPECT_NE(n.actions & milter::kActDelRcpt, 0u);
    EXPECT_NE(n.actions & milter::kActChangeHeaders, 0u);
    EXPECT_NE(n.actions & milter::kActAddHeaders, 0u) << "the tag action adds a header";
    EXPECT_EQ(n.protocol & milter::kNoRcpt, 0u) << "the daemon must see RCPT";
    EXPECT_EQ(n.protocol & milter::kNoHeaders, 0u) << "the daemon must see headers";
    // Postfix sends only the macros a milter lists for a step: if the daemon lists
    // any, they must include the queue ID at EOM (log lines) and the SMTP AUTH name
    // at MAIL (authenticated clients are outbound).
    auto lists = [](const std::string& names, const std::string& a, const std::string& b) {
        std::istringstream in(names);
        for (std::string name; in >> name;)
            if (name == a || name == b) return true;
        return false;
    };
    for (const auto& [stage, names] : n.macro_lists) {
        if (stage == milter::Stage::eom) {
            EXPECT_TRUE(lists(names, "i", "{i}")) << "EOM macros: " << names;
        }
        if (stage == milter::Stage::mail) {
            EXPECT_TRUE(lists(names, "{auth_authen}", "auth_authen")) << "MAIL macros: " << names;
        }
    }
    client.quit();
}

TEST_F(ProtocolTest, OutboundLocalSenderGetsBatvTag) {
    auto m = outbound("alice@ours.example", {"bob@remote.example"});
    m.queue_id = "3F1A2B4C5D";
    auto t = send(m);
    ASSERT_EQ(t.mail.action, Action::continue_);
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].action, Action::continue_);
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_EQ(t.eom->response.action, Action::continue_);

    // prvs=1DDDSSSSSS=alice@ours.example with DDD = today + 7.
    auto day = static_cast<int>((unix_day(now()) + 7) % 1000);
    auto expected = test_signer().sign_with("alice@ours.example", kBatvKeyNumber, day);
    ASSERT_TRUE(t.eom->new_sender.has_value()) << "no CHGFROM";
    EXPECT_EQ(*t.eom->new_sender, "<" + expected + ">");
    auto verdict = test_signer().verify(strip_angle(*t.eom->new_sender), now());
    EXPECT_EQ(verdict.status, BatvStatus::valid);
    EXPECT_EQ(verdict.original, "alice@ours.example");
    EXPECT_TRUE(t.eom->added_recipients.empty());
    EXPECT_TRUE(t.eom->deleted_recipients.empty());

    // One log line per message, beginning with the queue ID (after the program name,
    // which a foreground log may put first), naming sender, new sender and verdict.
    ASSERT_TRUE(milter_->wait_for_log("3F1A2B4C5D: ", std::chrono::seconds(3))) << milter_->log();
    auto lines = message_log_lines(milter_->log(), "3F1A2B4C5D");
    ASSERT_EQ(lines.size(), 1u) << milter_->log();
    EXPECT_TRUE(lines[0].starts_with("3F1A2B4C5D: direction=outbound ")) << lines[0];
    EXPECT_NE(lines[0].find(" from=<alice@ours.example>"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("<" + expected + ">"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(" verdict="), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(" reason="), std::string::npos) << lines[0];
}

TEST_F(ProtocolTest, OutboundTagUsesTheAddressAsGiven) {
    // BATV signs local@domain without case folding (Exim's prvs).
    auto t = send(outbound("First.Last+x@ours.example", {"bob@remote.example"}));
    ASSERT_TRUE(t.eom.has_value());
    ASSERT_TRUE(t.eom->new_sender.has_value());
    auto day = static_cast<int>((unix_day(now()) + 7) % 1000);
    EXPECT_EQ(
        *t.eom->new_sender,
        "<" + test_signer().sign_with("First.Last+x@ours.example", kBatvKeyNumber, day) + ">");
}

TEST_F(ProtocolTest, AuthenticatedClientIsOutbound) {
    auto m = inbound("alice@ours.example", {"bob@remote.example"});
    m.auth_authen = "alice";  // SMTP AUTH from outside the internal networks
    auto t = send(m);
    ASSERT_TRUE(t.eom.has_value());
    ASSERT_TRUE(t.eom->new_sender.has_value()) << "authenticated sender not signed";
    EXPECT_TRUE(t.eom->new_sender->starts_with("<prvs=1")) << *t.eom->new_sender;
}

TEST_F(ProtocolTest, OutboundForeignSenderForwardedGetsSrs0) {
    auto t = send(outbound("carol@foreign.example", {"dave@elsewhere.example"}));
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_EQ(t.eom->response.action, Action::continue_);
    ASSERT_TRUE(t.eom->new_sender.has_value()) << "no CHGFROM";
    auto expected = test_srs().forward("carol@foreign.example", now());
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(*t.eom->new_sender, "<" + expected->address + ">");
    EXPECT_TRUE(t.eom->new_sender->starts_with("<SRS0="));
    EXPECT_TRUE(t.eom->new_sender->ends_with("=foreign.example=carol@fwd.ours.example>"));
}

TEST_F(ProtocolTest, ForeignSenderToLocalRecipientsOnlyIsNotRewritten) {
    // SRS is for forwarding: with no non-local recipient there is nothing to forward.
    auto t = send(outbound("carol@foreign.example", {"alice@ours.example"}));
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_EQ(t.eom->response.action, Action::continue_);
    EXPECT_FALSE(t.eom->new_sender.has_value()) << *t.eom->new_sender;
}

TEST_F(ProtocolTest, OutboundNullSenderUnchanged) {
    auto t = send(outbound("", {"bob@remote.example"}));
    ASSERT_EQ(t.mail.action, Action::continue_);
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_EQ(t.eom->response.action, Action::continue_);
    EXPECT_FALSE(t.eom->new_sender.has_value()) << *t.eom->new_sender;
    EXPECT_TRUE(t.eom->added_recipients.empty());
    EXPECT_TRUE(t.eom->deleted_recipients.empty());
}

// --- Inbound bounces -------------------------------------------------------------

TEST_F(ProtocolTest, BounceToUnsignedLocalRecipientRejectedAtRcpt) {
    auto t = send(bounce_to({"alice@ours.example"}));
    ASSERT_EQ(t.mail.action, Action::continue_);
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].action, Action::replycode);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("550 5.7.1 ")) << t.rcpts[0].text;
    EXPECT_GT(t.rcpts[0].text.size(), std::string("550 5.7.1 ").size()) << "no reply text";
    // The MTA passes RCPT arguments as "<addr>": quoting them again gives "<<addr>>".
    EXPECT_EQ(t.rcpts[0].text.find("<<"), std::string::npos) << t.rcpts[0].text;
    EXPECT_FALSE(t.eom.has_value());
}

// Control bytes in a refused recipient reach neither the reply nor the log raw:
// no forged log line (CR/LF), no terminal escape.
TEST_F(ProtocolTest, ControlBytesInRecipientEscapedInReplyAndLog) {
    auto t = send(bounce_to({"a\x1b[2Jb\r\nX-Injected: yes@ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("550 5.7.1 ")) << t.rcpts[0].text;
    ASSERT_TRUE(milter_->wait_for_log("refused", std::chrono::seconds(3))) << milter_->log();
    auto log = milter_->log();
    for (char c : t.rcpts[0].text + log) {
        if (c == '\n') continue;  // between log lines
        EXPECT_FALSE((unsigned char)c < 0x20 || c == 0x7f) << "control byte " << int(c);
    }
    EXPECT_EQ(log.find("\nX-Injected"), std::string::npos) << log;
    EXPECT_NE(log.find("a\\x1b[2Jb\\x0d\\x0aX-Injected"), std::string::npos) << log;
}

TEST_F(ProtocolTest, MailerDaemonSenderCountsAsBounce) {
    auto m = bounce_to({"alice@ours.example"});
    m.sender = "<MAILER-DAEMON@mx.remote.example>";
    auto t = send(m);
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("550 5.7.1 ")) << t.rcpts[0].text;
}

TEST_F(ProtocolTest, BounceToValidTagAcceptedAndRewrittenBack) {
    auto tagged = signed_address("alice@ours.example");
    auto t = send(bounce_to({tagged}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].action, Action::continue_) << t.rcpts[0].text;
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_EQ(t.eom->response.action, Action::continue_);
    EXPECT_EQ(stripped(t.eom->deleted_recipients), std::vector<std::string>{tagged});
    EXPECT_EQ(stripped(t.eom->added_addresses()), std::vector<std::string>{"alice@ours.example"});
    EXPECT_FALSE(t.eom->new_sender.has_value()) << "a bounce keeps its null sender";
}

TEST_F(ProtocolTest, BounceToValidSrsAddressAcceptedAndRewrittenBack) {
    auto srs = test_srs().forward("carol@foreign.example", now());
    ASSERT_TRUE(srs.ok());
    auto t = send(bounce_to({srs->address}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].action, Action::continue_) << t.rcpts[0].text;
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_EQ(stripped(t.eom->deleted_recipients), std::vector<std::string>{srs->address});
    EXPECT_EQ(stripped(t.eom->added_addresses()),
              std::vector<std::string>{"carol@foreign.example"});
}

TEST_F(ProtocolTest, BounceToForgedTagRejected) {
    auto tagged = signed_address("alice@ours.example");
    // Flip the last hex digit of the signature: prvs=KDDDSSSSSS=...
    auto at = tagged.find('=', 5) - 1;
    tagged[at] = tagged[at] == '0' ? '1' : '0';
    auto t = send(bounce_to({tagged}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].action, Action::replycode);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("550 5.7.1 ")) << t.rcpts[0].text;
}

TEST_F(ProtocolTest, BounceToExpiredTagRejected) {
    auto tagged = signed_address("alice@ours.example", now() - 30 * 86400);
    auto t = send(bounce_to({tagged}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("550 5.7.1 ")) << t.rcpts[0].text;
}

TEST_F(ProtocolTest, BounceToForgedSrsRejected) {
    auto t = send(bounce_to({"SRS0=FAKE=2W=foreign.example=carol@fwd.ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("550 5.7.1 ")) << t.rcpts[0].text;
}

TEST_F(ProtocolTest, ExpiredTagFromTheCliRejected) {
    // The same case through the admin CLI, so CLI and daemon agree on the format.
    auto keys = milter_->dir() + "/batv.keys";
    auto signed_now =
        run_command({BACKSTOP_CLI, "batv", "sign", "--keys", keys, "alice@ours.example"});
    auto signed_old = run_command({BACKSTOP_CLI, "batv", "sign", "--keys", keys, "--time",
                                   std::to_string(now() - 30 * 86400), "alice@ours.example"});
    ASSERT_EQ(signed_now.status, 0) << signed_now.output;
    ASSERT_EQ(signed_old.status, 0) << signed_old.output;
    auto trim = [](std::string s) { return s.substr(0, s.find_last_not_of("\r\n") + 1); };
    auto t = send(bounce_to({trim(signed_now.output), trim(signed_old.output)}));
    ASSERT_EQ(t.rcpts.size(), 2u);
    EXPECT_EQ(t.rcpts[0].action, Action::continue_) << t.rcpts[0].text;
    EXPECT_TRUE(t.rcpts[1].text.starts_with("550 5.7.1 ")) << t.rcpts[1].text;
}

TEST_F(ProtocolTest, ExemptPostmasterAccepted) {
    auto t = send(bounce_to({"postmaster@ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].action, Action::continue_) << t.rcpts[0].text;
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_EQ(t.eom->response.action, Action::continue_);
    EXPECT_TRUE(t.eom->deleted_recipients.empty());
    EXPECT_TRUE(t.eom->added_recipients.empty());
}

TEST_F(ProtocolTest, BounceToForeignRecipientIsNotOurBusiness) {
    // Only local domains are protected; a null sender to elsewhere passes.
    auto t = send(bounce_to({"someone@elsewhere.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].action, Action::continue_) << t.rcpts[0].text;
}

TEST_F(ProtocolTest, MixedRecipientsEachJudgedAlone) {
    auto tagged = signed_address("alice@ours.example");
    auto t = send(bounce_to({"bob@ours.example", tagged, "postmaster@ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 3u);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("550 5.7.1 ")) << t.rcpts[0].text;
    EXPECT_EQ(t.rcpts[1].action, Action::continue_) << t.rcpts[1].text;
    EXPECT_EQ(t.rcpts[2].action, Action::continue_) << t.rcpts[2].text;
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_EQ(stripped(t.eom->deleted_recipients), std::vector<std::string>{tagged});
    EXPECT_EQ(stripped(t.eom->added_addresses()), std::vector<std::string>{"alice@ours.example"});
}

TEST_F(ProtocolTest, InboundNormalMailPassesUntouched) {
    auto t = send(inbound("someone@remote.example", {"alice@ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].action, Action::continue_);
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_EQ(t.eom->response.action, Action::continue_);
    EXPECT_FALSE(t.eom->new_sender.has_value());
    EXPECT_TRUE(t.eom->header_edits.empty());
}

TEST_F(ProtocolTest, ForgedBackstopHeadersRemoved) {
    auto m = inbound("someone@remote.example", {"alice@ours.example"});
    m.headers.push_back({"X-Backstop-Result", "pass (forged by the sender)"});
    m.headers.push_back({"X-Backstop-Watermark", "forged"});
    auto t = send(m);
    ASSERT_TRUE(t.eom.has_value());
    auto result = t.eom->changes_of("X-Backstop-Result");
    ASSERT_EQ(result.size(), 1u) << t.eom->action_codes;
    EXPECT_EQ(result[0].index, 1u);
    EXPECT_EQ(result[0].value, "");
    auto watermark = t.eom->changes_of("X-Backstop-Watermark");
    ASSERT_EQ(watermark.size(), 1u) << t.eom->action_codes;
    EXPECT_EQ(watermark[0].index, 1u);
    EXPECT_EQ(watermark[0].value, "");
}

TEST_F(ProtocolTest, TwoForgedHeadersOfOneNameBothRemoved) {
    auto m = inbound("someone@remote.example", {"alice@ours.example"});
    m.headers.push_back({"X-Backstop-Result", "one"});
    m.headers.push_back({"Received", "from x by y"});
    m.headers.push_back({"x-backstop-result", "two"});
    auto t = send(m);
    ASSERT_TRUE(t.eom.has_value());
    auto changes = t.eom->changes_of("X-Backstop-Result");
    ASSERT_EQ(changes.size(), 2u) << t.eom->action_codes;
    // Deleting occurrence 2 then 1, or 1 twice: both leave none.
    std::vector<std::uint32_t> idx{changes[0].index, changes[1].index};
    EXPECT_TRUE(idx == (std::vector<std::uint32_t>{2, 1}) ||
                idx == (std::vector<std::uint32_t>{1, 1}))
        << idx[0] << "," << idx[1];
    for (const auto& c : changes) EXPECT_EQ(c.value, "");
}

// --- Other actions ----------------------------------------------------------------

class TempfailTest : public ProtocolTest {
    MilterSettings settings() override {
        MilterSettings s;
        s.unsigned_bounce = "tempfail";
        s.bad_signature = "tempfail";
        return s;
    }
};

TEST_F(TempfailTest, UnsignedBounceTempfailed451) {
    auto t = send(bounce_to({"alice@ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].action, Action::replycode);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("451 4.7.1 ")) << t.rcpts[0].text;
}

TEST_F(TempfailTest, ForgedTagTempfailed451) {
    auto t = send(bounce_to({"prvs=1000abcdef=alice@ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("451 4.7.1 ")) << t.rcpts[0].text;
}

class TagTest : public ProtocolTest {
    MilterSettings settings() override {
        MilterSettings s;
        s.unsigned_bounce = "tag";
        return s;
    }
};

TEST_F(TagTest, UnsignedBounceAcceptedWithResultHeader) {
    auto t = send(bounce_to({"alice@ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].action, Action::continue_) << t.rcpts[0].text;
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_EQ(t.eom->response.action, Action::continue_);
    int added = 0;
    for (const auto& e : t.eom->header_edits) {
        if (e.kind != HeaderEdit::Kind::change && e.name == "X-Backstop-Result") {
            ++added;
            EXPECT_FALSE(e.value.empty());
            EXPECT_EQ(e.value.find("<<"), std::string::npos) << "address quoted twice: " << e.value;
        }
    }
    EXPECT_EQ(added, 1) << t.eom->action_codes;
}

TEST_F(TagTest, ForgedResultHeaderReplacedNotDuplicated) {
    auto m = bounce_to({"alice@ours.example"});
    m.headers.push_back({"X-Backstop-Result", "pass"});
    auto t = send(m);
    ASSERT_TRUE(t.eom.has_value());
    auto removed = t.eom->changes_of("X-Backstop-Result");
    ASSERT_EQ(removed.size(), 1u) << t.eom->action_codes;
    EXPECT_EQ(removed[0].value, "");
}

class AcceptTest : public ProtocolTest {
    MilterSettings settings() override {
        MilterSettings s;
        s.unsigned_bounce = "accept";
        return s;
    }
};

TEST_F(AcceptTest, UnsignedBounceAcceptedUntouched) {
    auto t = send(bounce_to({"alice@ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_TRUE(t.rcpts[0].proceeds() || t.rcpts[0].action == Action::accept)
        << to_string(t.rcpts[0].action) << " " << t.rcpts[0].text;
    if (t.eom) {
        EXPECT_TRUE(t.eom->deleted_recipients.empty());
    }
}

class DiscardTest : public ProtocolTest {
    MilterSettings settings() override {
        MilterSettings s;
        s.unsigned_bounce = "discard";
        return s;
    }
};

TEST_F(DiscardTest, UnsignedBounceDiscarded) {
    // Discarding is for the whole message: at RCPT or at EOM, never a reject.
    auto t = send(bounce_to({"alice@ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_FALSE(t.rcpts[0].is_reject()) << t.rcpts[0].text;
    bool discarded = t.rcpts[0].action == Action::discard ||
                     (t.eom && t.eom->response.action == Action::discard);
    EXPECT_TRUE(discarded) << "rcpt: " << to_string(t.rcpts[0].action)
                           << (t.eom ? std::string(", eom: ") + to_string(t.eom->response.action)
                                     : std::string());
}

// --- Connection handling -----------------------------------------------------------

TEST_F(ProtocolTest, AbortMidMessageThenNewMessageOnSameConnection) {
    auto client = milter_->client();
    ASSERT_TRUE(client.conn("localhost", '4', 40001, kInternalAddr).proceeds());
    ASSERT_TRUE(client.helo("localhost").proceeds());
    // First message: a foreign sender, aborted after a forged header.
    client.macros('M', {{"i", "ABORTED1"}});
    ASSERT_EQ(client.mail({"<carol@foreign.example>"}).action, Action::continue_);
    ASSERT_EQ(client.rcpt({"<dave@elsewhere.example>"}).action, Action::continue_);
    ASSERT_TRUE(client.data().proceeds());
    ASSERT_TRUE(client.header("X-Backstop-Result", "forged").proceeds());
    client.abort();
    // Second message on the same connection: nothing of the first may leak in.
    auto m = outbound("alice@ours.example", {"bob@remote.example"});
    m.queue_id = "SECOND2";
    auto t = client.send_message(m, /*with_connect=*/false);
    client.quit();
    ASSERT_TRUE(t.eom.has_value());
    ASSERT_TRUE(t.eom->new_sender.has_value());
    EXPECT_TRUE(t.eom->new_sender->starts_with("<prvs=1")) << *t.eom->new_sender;
    EXPECT_TRUE(t.eom->new_sender->ends_with("=alice@ours.example>")) << *t.eom->new_sender;
    EXPECT_TRUE(t.eom->header_edits.empty()) << "header state leaked from the aborted message";
}

TEST_F(ProtocolTest, LargeBodyInManyChunksStillSigned) {
    auto m = outbound("alice@ours.example", {"bob@remote.example"});
    for (int i = 0; i < 6000; ++i)
        m.body += "A line of a long message, number " + std::to_string(i) + "\r\n";
    ASSERT_GT(m.body.size(), 3u * 65535u);
    auto t = send(m);
    EXPECT_GE(t.body.size(), 3u);
    ASSERT_TRUE(t.eom.has_value());
    ASSERT_TRUE(t.eom->new_sender.has_value());
    EXPECT_TRUE(t.eom->new_sender->ends_with("=alice@ours.example>")) << *t.eom->new_sender;
}

TEST_F(ProtocolTest, SeveralMessagesOnOneConnection) {
    auto client = milter_->client();
    ASSERT_TRUE(client.conn("localhost", '4', 40002, kInternalAddr).proceeds());
    ASSERT_TRUE(client.helo("localhost").proceeds());
    for (int i = 0; i < 5; ++i) {
        auto user = "user" + std::to_string(i);
        auto t = client.send_message(outbound(user + "@ours.example", {"x@remote.example"}),
                                     /*with_connect=*/false);
        ASSERT_TRUE(t.eom.has_value());
        ASSERT_TRUE(t.eom->new_sender.has_value());
        EXPECT_TRUE(t.eom->new_sender->ends_with("=" + user + "@ours.example>"));
    }
    client.quit();
}

// A signed message's end of message is several packets (the new sender, then the
// answer). Were Nagle on for the milter's end of an MTA connection, the answer would
// wait for the MTA's delayed ACK of the first: 40 ms or more a message on Linux.
// libmilter opens its own socket, so this guards the engine that sets TCP_NODELAY on
// it. Checked on the daemon's own socket, borrowed with pidfd_getfd(2), not by timing.
TEST_F(ProtocolTest, MtaConnectionsHaveNoDelay) {
    auto client = milter_->client();
    sockaddr_storage ours{};
    socklen_t len = sizeof ours;
    ASSERT_EQ(getsockname(client.native_handle(), reinterpret_cast<sockaddr*>(&ours), &len), 0);
    ASSERT_TRUE(ours.ss_family == AF_INET || ours.ss_family == AF_INET6);
    auto port_of = [](const sockaddr_storage& a) {
        return a.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(a).sin_port
                                      : reinterpret_cast<const sockaddr_in6&>(a).sin6_port;
    };
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, milter_->pid(), 0));
    ASSERT_GE(pidfd, 0) << "pidfd_open: " << std::strerror(errno);
    int found = 0, nodelay = -1;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(milter_->pid()) + "/fd")) {
        std::error_code ec;
        auto target = std::filesystem::read_symlink(e.path(), ec).string();
        if (ec || !target.starts_with("socket:")) continue;
        int fd = static_cast<int>(
            syscall(SYS_pidfd_getfd, pidfd, std::stoi(e.path().filename().string()), 0));
        if (fd < 0) continue;
        sockaddr_storage peer{};
        socklen_t plen = sizeof peer;
        if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0 &&
            peer.ss_family == ours.ss_family && port_of(peer) == port_of(ours)) {
            ++found;
            int v = 0;
            socklen_t vlen = sizeof v;
            if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vlen) == 0) nodelay = v;
        }
        close(fd);
    }
    close(pidfd);
    ASSERT_EQ(found, 1) << "the daemon's end of our connection";
    EXPECT_NE(nodelay, 0) << "TCP_NODELAY is off on the daemon's end";
    client.quit();
}

TEST_F(ProtocolTest, QuitNcThenNewConnectionReclassifies) {
    // QUIT_NC: the MTA reuses the socket for a new SMTP client (inbound this time).
    auto client = milter_->client();
    auto first = client.send_message(outbound("alice@ours.example", {"bob@remote.example"}));
    ASSERT_TRUE(first.eom && first.eom->new_sender);
    client.quit_nc();
    auto second = client.send_message(bounce_to({"alice@ours.example"}));
    client.quit();
    ASSERT_EQ(second.rcpts.size(), 1u);
    EXPECT_TRUE(second.rcpts[0].text.starts_with("550 5.7.1 ")) << second.rcpts[0].text;
}

TEST_F(ProtocolTest, FiftyConcurrentConnections) {
    constexpr int kClients = 50;
    std::mutex mu;
    std::vector<std::string> failures;
    auto fail = [&](int who, const std::string& what) {
        std::lock_guard lock(mu);
        failures.push_back("client " + std::to_string(who) + ": " + what);
    };
    auto srs = test_srs();
    std::latch all_connected(kClients);
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i) {
        threads.emplace_back([&, i] {
            std::optional<MilterClient> connected;
            try {
                connected.emplace(milter_->client());
            } catch (const std::exception& e) {
                fail(i, e.what());
            }
            all_connected.arrive_and_wait();  // then all transactions overlap
            if (!connected) return;
            try {
                auto& client = *connected;
                auto user = "u" + std::to_string(i);
                // Three transactions per client, each on its own connection state.
                auto first = outbound(user + "@ours.example", {"x@r.example"});
                first.queue_id = "QA" + std::to_string(i);
                auto a = client.send_message(first);
                if (!a.eom || !a.eom->new_sender ||
                    !a.eom->new_sender->ends_with("=" + user + "@ours.example>") ||
                    !a.eom->new_sender->starts_with("<prvs="))
                    fail(i, "BATV: " + (a.eom && a.eom->new_sender ? *a.eom->new_sender : "-"));
                client.quit_nc();
                auto b = client.send_message(
                    outbound(user + "@foreign.example", {"y@elsewhere.example"}));
                auto want = srs.forward(user + "@foreign.example", now());
                if (!b.eom || !b.eom->new_sender || *b.eom->new_sender != angle(want->address))
                    fail(i, "SRS: " + (b.eom && b.eom->new_sender ? *b.eom->new_sender : "-"));
                client.quit_nc();
                auto c = client.send_message(bounce_to({user + "@ours.example"}));
                if (c.rcpts.size() != 1 || !c.rcpts[0].text.starts_with("550 5.7.1 "))
                    fail(i, "bounce: " + (c.rcpts.empty() ? "-" : c.rcpts[0].text));
                client.quit();
            } catch (const std::exception& e) {
                fail(i, e.what());
            }
        });
    }
    for (auto& t : threads) t.join();
    for (const auto& f : failures) ADD_FAILURE() << f;
    EXPECT_TRUE(failures.empty());
    // Each message logged once, under its own queue ID, with its own sender.
    auto log = milter_->log();
    for (int i = 0; i < kClients; ++i) {
        auto lines = message_log_lines(log, "QA" + std::to_string(i));
        ASSERT_EQ(lines.size(), 1u) << "QA" << i;
        EXPECT_NE(lines[0].find("from=<u" + std::to_string(i) + "@ours.example>"),
                  std::string::npos)
            << lines[0];
    }
}

// After abuse, the daemon must still be up and answer a normal client correctly.
void expect_still_serving(MilterProcess& milter) {
    ASSERT_TRUE(milter.alive()) << "daemon died";
    auto client = milter.client();
    auto t = client.send_message(outbound("alice@ours.example", {"bob@remote.example"}));
    client.quit();
    ASSERT_TRUE(t.eom.has_value());
    ASSERT_TRUE(t.eom->new_sender.has_value());
    EXPECT_TRUE(t.eom->new_sender->starts_with("<prvs=1"));
}

TEST_F(ProtocolTest, GarbageBytesDoNotKillTheDaemon) {
    {
        auto client = MilterClient::connect_tcp("127.0.0.1", milter_->port());
        client.send_bytes("EHLO this is not the milter protocol\r\n");
        EXPECT_TRUE(client.wait_closed(std::chrono::seconds(5)));
    }
    {
        // A length of 4 GiB.
        auto client = MilterClient::connect_tcp("127.0.0.1", milter_->port());
        client.send_bytes(
            std::string("\xff\xff\xff\xff"
                        "O",
                        5));
        EXPECT_TRUE(client.wait_closed(std::chrono::seconds(5)));
    }
    {
        // An unknown command byte after a valid negotiation.
        auto client = milter_->client();
        client.send_packet('Z', "junk");
        client.wait_closed(std::chrono::seconds(2));
    }
    expect_still_serving(*milter_);
}

TEST_F(ProtocolTest, MalformedPacketsDoNotKillTheDaemon) {
    {
        // CONNECT with no NUL terminators, MAIL with no argument, RCPT before MAIL.
        auto client = milter_->client();
        client.send_packet('C', "x");
        client.wait_closed(std::chrono::seconds(2));
    }
    {
        auto client = milter_->client();
        client.conn("localhost", '4', 1, kInternalAddr);
        client.send_packet('M', "");
        client.wait_closed(std::chrono::seconds(2));
    }
    {
        auto client = milter_->client();
        client.conn("mx.remote.example", '4', 1, kExternalAddr);
        client.send_packet('R', std::string("<alice@ours.example>\0", 21));
        client.wait_closed(std::chrono::seconds(2));
    }
    {
        // EOM with no MAIL at all.
        auto client = milter_->client();
        client.conn("localhost", '4', 1, kInternalAddr);
        client.send_packet('E', "");
        client.wait_closed(std::chrono::seconds(2));
    }
    expect_still_serving(*milter_);
}

TEST_F(ProtocolTest, DisconnectsMidStreamDoNotKillTheDaemon) {
    for (int cut = 0; cut < 6; ++cut) {
        auto client = milter_->client();
        client.conn("localhost", '4', 1, kInternalAddr);
        if (cut > 0) client.helo("localhost");
        if (cut > 1) {
            client.macros('M', {{"i", "CUT" + std::to_string(cut)}});
            client.mail({"<alice@ours.example>"});
        }
        if (cut > 2) client.rcpt({"<bob@remote.example>"});
        if (cut > 3) {
            client.data();
            client.header("Subject", "cut");
        }
        if (cut > 4)
            client.send_bytes(
                std::string("\0\0\0\x10"
                            "B"
                            "half",
                            9));  // truncated
        // Destructor closes the socket here, mid-transaction.
    }
    expect_still_serving(*milter_);
}

TEST_F(ProtocolTest, NoReplyStepsAgreedWhenOffered) {
    // Header, end of headers and body never refuse anything, so the MTA need not
    // wait for their answers; mail, rcpt and end of message are always answered.
    auto client = MilterClient::connect_tcp("127.0.0.1", milter_->port());
    auto agreed = client.negotiate();
    EXPECT_TRUE(agreed.protocol & milter::kNrHeader);
    EXPECT_TRUE(agreed.protocol & milter::kNrEoh);
    EXPECT_TRUE(agreed.protocol & milter::kNrBody);
    EXPECT_FALSE(agreed.protocol & milter::kNrMail);
    EXPECT_FALSE(agreed.protocol & milter::kNrRcpt);
    client.quit();
}

TEST_F(ProtocolTest, WithoutNoReplyFlagsEveryStepIsAnswered) {
    // An MTA that offers no NR_* flag (an older one) gets an answer to every step.
    ClientOptions options;
    options.protocol = milter::kOfferAllSteps;
    auto client = milter_->client(options);
    auto t = client.send_message(outbound("alice@ours.example", {"bob@remote.example"}));
    client.quit();
    ASSERT_FALSE(t.headers.empty());
    for (const auto& h : t.headers) EXPECT_EQ(h.action, Action::continue_);
    ASSERT_FALSE(t.body.empty());
    EXPECT_EQ(t.body[0].action, Action::continue_);
    ASSERT_TRUE(t.eom.has_value());
    ASSERT_TRUE(t.eom->new_sender.has_value());
    EXPECT_TRUE(t.eom->new_sender->starts_with("<prvs=1"));
}

TEST_F(ProtocolTest, Ipv6ClientOutsideInternalNetworksIsInbound) {
    auto m = bounce_to({"alice@ours.example"});
    m.family = '6';
    m.client_addr = "2001:db8::25";
    auto t = send(m);
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("550 5.7.1 ")) << t.rcpts[0].text;
}

TEST_F(ProtocolTest, SigtermStopsCleanly) {
    expect_still_serving(*milter_);
    EXPECT_EQ(milter_->terminate(std::chrono::seconds(10)), 0)
        << "no clean exit within 10 s of SIGTERM";
    milter_ = std::make_unique<MilterProcess>();  // TearDown wants a live daemon
}

TEST_F(ProtocolTest, SigtermLetsTheMessageUnderWayFinish) {
    // A message between MAIL and end of message when SIGTERM comes still gets its
    // answer (signed), new connections are refused, then the daemon exits.
    auto client = milter_->client();
    client.conn("localhost", '4', 40000, kInternalAddr);
    ASSERT_TRUE(client.mail({"<alice@ours.example>"}).proceeds());
    ASSERT_TRUE(client.rcpt({"<bob@remote.example>"}).proceeds());
    milter_->signal(SIGTERM);
    // Logged once the listener is shut: from then on a connection is refused.
    ASSERT_TRUE(milter_->wait_for_log("no longer accepting", std::chrono::seconds(10)))
        << milter_->log();
    if (engine_under_test() == "libmilter") {
        // libmilter keeps its socket until it stops: a new message is tempfailed.
        auto late = milter_->client();
        late.conn("localhost", '4', 40001, kInternalAddr);
        const Response r = late.mail({"<alice@ours.example>"});
        EXPECT_EQ(r.action, Action::replycode);
        EXPECT_EQ(r.text.rfind("451 4.3.2 ", 0), 0u) << r.text;
    } else {
        EXPECT_THROW(milter_->client(), MilterError) << "still accepting after SIGTERM";
    }
    client.header("From", "alice@ours.example");
    client.eoh();
    client.body("hello\r\n");
    EomResult eom = client.eom();
    ASSERT_TRUE(eom.new_sender.has_value()) << milter_->log();
    EXPECT_TRUE(eom.new_sender->starts_with("<prvs=1"));
    client.quit();
    EXPECT_EQ(milter_->terminate(std::chrono::seconds(15)), 0) << milter_->log();
    milter_ = std::make_unique<MilterProcess>();
}

// --- Sockets and command line ----------------------------------------------------------

// Runs the outbound BATV case against a daemon started with these settings.
void expect_signs_with(MilterSettings settings) {
    MilterProcess milter(std::move(settings));
    expect_still_serving(milter);
}

TEST(SocketTest, ListensOnInet6) {
    MilterSettings s;
    s.socket = SocketKind::inet6;
    expect_signs_with(s);
}

// inet6:PORT with no host is one socket for IPv6 and IPv4, as libmilter binds it: a
// Postfix with inet:127.0.0.1:PORT reaches it (a v6-only socket refused it, and every
// message tempfailed).
TEST(SocketTest, Inet6WithoutHostTakesIpv4AndIpv6) {
    MilterSettings s;
    s.socket = SocketKind::inet6_any;
    MilterProcess milter(std::move(s));
    expect_still_serving(milter);  // over ::1
    auto v4 = MilterClient::connect_tcp("127.0.0.1", milter.port());
    v4.negotiate();
    auto t = v4.send_message(outbound("alice@ours.example", {"bob@remote.example"}));
    v4.quit();
    ASSERT_TRUE(t.eom.has_value());
    ASSERT_TRUE(t.eom->new_sender.has_value());
    EXPECT_TRUE(t.eom->new_sender->starts_with("<prvs=1"));
}

TEST(SocketTest, ListensOnUnixSocket) {
    MilterSettings s;
    s.socket = SocketKind::unix_;
    expect_signs_with(s);
}

class CommandLineTest : public ProtocolTest {
    MilterSettings settings() override {
        MilterSettings s;
        s.args = {"--inbound.unsigned-bounce", "tempfail", "--srs.domain", "cli.ours.example"};
        return s;
    }
};

TEST_F(CommandLineTest, LongOptionsOverrideTheConfigFile) {
    auto bounce = send(bounce_to({"alice@ours.example"}));
    ASSERT_EQ(bounce.rcpts.size(), 1u);
    EXPECT_TRUE(bounce.rcpts[0].text.starts_with("451 4.7.1 ")) << bounce.rcpts[0].text;
    auto forwarded = send(outbound("carol@foreign.example", {"dave@elsewhere.example"}));
    ASSERT_TRUE(forwarded.eom && forwarded.eom->new_sender);
    EXPECT_TRUE(forwarded.eom->new_sender->ends_with("=carol@cli.ours.example>"))
        << *forwarded.eom->new_sender;
}

// --- Config and reload ---------------------------------------------------------------

TEST_F(ProtocolTest, CheckConfigAcceptsGoodAndNamesBadKey) {
    auto good =
        run_command({BACKSTOP_MILTER, "--config", milter_->config_path(), "--check-config"});
    EXPECT_EQ(good.status, 0) << good.output;
    auto bad_path = milter_->dir() + "/bad.conf";
    auto text = milter_->config_text({}) + "no-such-key = 1\n";
    { std::ofstream(bad_path) << text; }
    auto bad = run_command({BACKSTOP_MILTER, "--config", bad_path, "--check-config"});
    EXPECT_EQ(bad.status, 1) << bad.output;
    EXPECT_NE(bad.output.find("no-such-key"), std::string::npos) << bad.output;
    auto line = std::to_string(std::count(text.begin(), text.end(), '\n'));
    EXPECT_NE(bad.output.find(line), std::string::npos) << "line " << line << ": " << bad.output;
}

TEST_F(ProtocolTest, CheckConfigRefusesReadableKeyFile) {
    auto keys = milter_->dir() + "/batv.keys";
    ASSERT_EQ(::chmod(keys.c_str(), 0644), 0);
    auto result =
        run_command({BACKSTOP_MILTER, "--config", milter_->config_path(), "--check-config"});
    ::chmod(keys.c_str(), 0600);
    EXPECT_EQ(result.status, 1) << result.output;
    EXPECT_NE(result.output.find("batv.keys"), std::string::npos) << result.output;
}

TEST_F(ProtocolTest, ReloadsUnderLoadKeepEveryAnswerRight) {
    // Each connection keeps the config it started with; reloads must not disturb it.
    std::atomic<bool> stop{false};
    std::atomic<int> done{0};
    std::mutex mu;
    std::vector<std::string> failures;
    std::vector<std::thread> workers;
    for (int w = 0; w < 8; ++w) {
        workers.emplace_back([&, w] {
            while (!stop) {
                try {
                    auto client = milter_->client();
                    auto user = "w" + std::to_string(w);
                    auto t = client.send_message(outbound(user + "@ours.example", {"x@r.example"}));
                    client.quit();
                    if (!t.eom || !t.eom->new_sender ||
                        !t.eom->new_sender->ends_with("=" + user + "@ours.example>")) {
                        std::lock_guard lock(mu);
                        failures.push_back(user + ": " +
                                           (t.eom && t.eom->new_sender ? *t.eom->new_sender : "-"));
                    }
                    ++done;
                } catch (const std::exception& e) {
                    std::lock_guard lock(mu);
                    failures.push_back(e.what());
                }
            }
        });
    }
    auto text = milter_->config_text({});
    for (int i = 0; i < 10; ++i) {
        milter_->reload(text);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    stop = true;
    for (auto& t : workers) t.join();
    for (const auto& f : failures) ADD_FAILURE() << f;
    EXPECT_GT(done.load(), 20);
    EXPECT_TRUE(milter_->alive());
}

TEST_F(ProtocolTest, ReloadWithBrokenConfigKeepsServing) {
    // A bad value for a known key; the rest of the file is fine.
    MilterSettings broken;
    broken.unsigned_bounce = "sometimes";
    milter_->reload(milter_->config_text(broken));
    // The error is logged (naming the key), then the old config keeps serving.
    EXPECT_TRUE(milter_->wait_for_log("unsigned-bounce", std::chrono::seconds(5)))
        << milter_->log();
    ASSERT_TRUE(milter_->alive());
    expect_still_serving(*milter_);
    auto t = send(bounce_to({"alice@ours.example"}));
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_TRUE(t.rcpts[0].text.starts_with("550 5.7.1 ")) << t.rcpts[0].text;
}

TEST_F(ProtocolTest, ReloadWithGoodConfigTakesEffect) {
    MilterSettings changed;
    changed.unsigned_bounce = "tempfail";
    milter_->reload(milter_->config_text(changed));
    // Poll: new connections get the new config once the reload is done.
    std::string last;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
        auto t = send(bounce_to({"alice@ours.example"}));
        last = t.rcpts.empty() ? "" : t.rcpts[0].text;
        if (last.starts_with("451 4.7.1 ")) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(last.starts_with("451 4.7.1 ")) << last;
}

// The engine is chosen at start: a reload that names the other one is applied
// otherwise, and logs that the running engine stays.
TEST(EngineTest, ReloadKeepsTheRunningEngine) {
    const std::string running = engine_under_test();
    const std::string other = running == "libmilter" ? "native" : "libmilter";
    MilterSettings s;
    s.engine_from_environment = false;  // a reload would keep the command line's
    s.extra = "\n[general]\nengine = " + running + "\n";
    MilterProcess milter(s);
    ASSERT_TRUE(milter.wait_for_log("(" + running + " engine)", std::chrono::seconds(5)))
        << milter.log();
    MilterSettings changed = s;
    changed.extra = "\n[general]\nengine = " + other + "\n";
    milter.reload(milter.config_text(changed));
    EXPECT_TRUE(milter.wait_for_log(
        "engine = " + other + " takes a restart; keeping the running engine, " + running,
        std::chrono::seconds(5)))
        << milter.log();
    EXPECT_TRUE(milter.wait_for_log("configuration reloaded", std::chrono::seconds(5)));
    expect_still_serving(milter);
}

// --- miltertest scripts (OpenDKIM's tool): t-*.lua next to this file -----------------

std::vector<std::string> lua_scripts() {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(BACKSTOP_PROTOCOL_DIR)) {
        auto name = entry.path().filename().string();
        if (name.starts_with("t-") && name.ends_with(".lua")) out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

class Miltertest : public ::testing::TestWithParam<std::string> {};

TEST_P(Miltertest, Script) {
    const char* tool = "/usr/bin/miltertest";
    if (::access(tool, X_OK) != 0)
        GTEST_SKIP() << "miltertest not installed (apt install miltertest)";
    MilterProcess milter;
    auto result = run_command({tool, "-D", "port=" + std::to_string(milter.port()), "-D",
                               "tag=" + signed_address("alice@ours.example"), "-s",
                               std::string(BACKSTOP_PROTOCOL_DIR) + "/" + GetParam()});
    EXPECT_EQ(result.status, 0) << result.output << "\n--- backstop-milter stderr ---\n"
                                << milter.log();
}

INSTANTIATE_TEST_SUITE_P(Lua, Miltertest, ::testing::ValuesIn(lua_scripts()), [](const auto& info) {
    auto name = info.param.substr(2, info.param.size() - 6);
    std::replace(name.begin(), name.end(), '-', '_');
    return name;
});

}  // namespace
}  // namespace backstop::test
