// Differential test of the two milter engines: the same MTA conversations, drawn at
// random from what an MTA sends (libmilter's state table is the grammar: negotiate,
// connect, HELO, then messages of MAIL, RCPT..., DATA, headers, end of headers, body,
// end of message, an abort at any stage, QUIT or QUIT_NC and a new connection), go
// to backstop-milter on the native engine and on the libmilter engine, and the
// decoded replies and modifications must be the same. Varied: protocol version 2 and
// 6, the actions and steps offered (none of the no-reply steps, some, all), one to
// three messages per connection, macros present and absent, ordinary, long and odd
// addresses, bounces to tags and unsigned addresses, outbound and forwarded mail.
//
// DIFFERENTIAL_STREAMS (default 10,000) conversations; DIFFERENTIAL_SEED the first
// seed. A divergence prints the seed and both transcripts; scripts/differential runs a
// million. The documented differences (kAllowed, docs/PERFORMANCE.md) are the only
// ones that pass.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "milter_client.hpp"
#include "milter_process.hpp"

namespace backstop::test {
namespace {

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

// One engine's daemon: the same keys and configuration for both (storm and replay
// limits off: their windows would make two runs of one stream differ in time alone).
MilterSettings settings_for(const std::string& engine) {
    MilterSettings s;
    s.engine_from_environment = false;
    s.extra = "storm-limit = off\nreplay-limit = 0\n[general]\nengine = " + engine + "\n";
    return s;
}

// The operations of one conversation, drawn from a seed; run() plays them to a client
// and writes what came back, one line per reply, the same way for both engines.
class Conversation {
  public:
    Conversation(std::uint64_t seed, std::string tag, std::string srs)
        : rng_(seed), tag_(std::move(tag)), srs_(std::move(srs)) {}

    ClientOptions options() {
        ClientOptions o;
        o.timeout = std::chrono::seconds(3);  // a missing answer fails fast
        o.version = pick(4) == 0 ? 2 : 6;
        // What MTAs offer: everything (Postfix, Sendmail), no SETSYMLIST (Sendmail
        // 8.13), version 2's actions (milter_protocol = 2), headers only. Never none:
        // libmilter reads an offer of none as version 1's actions, as MTAs know.
        const std::uint32_t actions[] = {milter::kAllActions, 0x1ff & ~milter::kActSetSymList, 0x3f,
                                         milter::kActAddHeaders | milter::kActChangeHeaders};
        o.actions = actions[pick(4)];
        const std::uint32_t steps[] = {
            milter::kOfferAllSteps | milter::kAllNoReply, milter::kOfferAllSteps,
            milter::kOfferAllSteps | milter::kNrHeader | milter::kNrBody,
            0x7f};  // version 2's steps; never none (read as version 1's)
        o.protocol = steps[pick(4)];
        if (o.version == 2) o.protocol &= 0x7f;  // what a version 2 MTA can offer
        return o;
    }

    // Plays the conversation; the transcript, or "closed: ..." where the milter ended it.
    std::string run(MilterClient& c) {
        std::ostringstream out;
        try {
            const Negotiated n = c.negotiate();
            out << "negotiated v" << n.version << " a" << n.actions << " p" << n.protocol << "\n";
            const int connections = 1 + pick(2);
            for (int k = 0; k < connections; ++k) {
                if (k > 0) c.quit_nc();
                connection(c, out);
            }
            c.quit();
        } catch (const std::exception& e) {
            out << "closed: " << e.what() << "\n";
        }
        return out.str();
    }

  private:
    int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

    std::string address(bool local) {
        static const char* kLocal[] = {"alice@ours.example", "Bob.Smith+list@ours.example",
                                       "postmaster@ours.example", "x@OURS.EXAMPLE"};
        static const char* kForeign[] = {"carol@foreign.example", "dave@remote.example",
                                         "\"odd local\"@remote.example", "e@[192.0.2.1]"};
        std::string a = local ? kLocal[pick(4)] : kForeign[pick(4)];
        if (pick(10) == 0)
            a = std::string(200, 'l') + "@" + (local ? "ours.example" : "far.example");
        return a;
    }

    void show(std::ostringstream& out, const char* step, const Response& r) {
        out << step << " " << to_string(r.action);
        if (!r.text.empty()) out << " " << r.text;
        out << "\n";
    }

    void connection(MilterClient& c, std::ostringstream& out) {
        static const char* kClients[] = {"192.0.2.10", "198.51.100.7", "127.0.0.1"};
        const std::string client = kClients[pick(3)];
        if (pick(2)) c.macros('C', {{"j", "mx.ours.example"}, {"{daemon_name}", "smtpd"}});
        show(out, "connect",
             c.conn("client.example", '4', std::uint16_t(pick(2) ? 0 : 40000), client));
        show(out, "helo", c.helo("client.example"));
        const int messages = 1 + pick(3);
        for (int m = 0; m < messages; ++m) {
            if (!message(c, out)) return;
        }
    }

    // One message; false when the milter refused the connection's further use.
    bool message(MilterClient& c, std::ostringstream& out) {
        const int kind = pick(4);  // 0 bounce, 1 outbound, 2 forwarded, 3 inbound mail
        std::string sender = kind == 0 ? "<>" : "<" + address(kind == 1) + ">";
        if (kind == 1 && pick(3) == 0) c.macros('M', {{"{auth_authen}", "alice"}});
        if (pick(2)) c.macros('M', {{"i", "QID" + std::to_string(pick(1000))}});
        const Response mail = c.mail({sender});
        show(out, "mail", mail);
        if (!mail.proceeds() || abort_here(c, out)) return true;
        const int rcpts = 1 + pick(3);
        bool any = false;
        for (int i = 0; i < rcpts; ++i) {
            std::string r;
            switch (pick(4)) {
                case 0:
                    r = tag_;
                    break;
                case 1:
                    r = srs_;
                    break;
                case 2:
                    r = address(true);
                    break;
                default:
                    r = address(false);
                    break;
            }
            if (pick(3) == 0)
                c.macros(
                    'R',
                    {{"{rcpt_mailer}", "local"}, {"{rcpt_host}", ""}, {"{rcpt_addr}", "alice"}});
            const Response rr = c.rcpt({"<" + r + ">"});
            show(out, "rcpt", rr);
            any = any || rr.proceeds();
        }
        if (!any) {
            c.abort();  // every recipient refused: the MTA ends the message
            out << "abort\n";
            return true;
        }
        if (abort_here(c, out)) return true;
        show(out, "data", c.data());
        const int headers = pick(4);
        for (int h = 0; h < headers; ++h) {
            static const char* kNames[] = {"Subject", "From", "X-Backstop-Result",
                                           "Auto-Submitted"};
            show(out, "header", c.header(kNames[pick(4)], pick(2) ? "auto-replied" : "hello"));
        }
        if (abort_here(c, out)) return true;
        show(out, "eoh", c.eoh());
        if (pick(2)) show(out, "body", c.body("Hello.\r\n"));
        if (abort_here(c, out)) return true;
        if (pick(2)) c.macros('E', {{"i", "QIDE"}});
        // Without data: Postfix and Sendmail send the whole body in BODY packets.
        // libmilter does not call the end-of-message callback when the body callback
        // for data carried by EOM answers SMFIS_NOREPLY, as a milter with NR_BODY
        // must (st_bodyend): such a stream would hang there (see kAllowed's note).
        const EomResult e = c.eom();
        show(out, "eom", e.response);
        out << "  codes " << e.action_codes << "\n";
        if (e.new_sender) out << "  from " << *e.new_sender << "\n";
        for (const auto& a : e.added_addresses()) out << "  +rcpt " << a << "\n";
        for (const auto& d : e.deleted_recipients) out << "  -rcpt " << d << "\n";
        for (const auto& h : e.header_edits) {
            out << "  header " << int(h.kind) << " " << h.index << " " << h.name << ": "
                << (h.name == "X-Backstop-Result" ? "(value)" : h.value) << "\n";
        }
        return true;
    }

    bool abort_here(MilterClient& c, std::ostringstream& out) {
        if (pick(12) != 0) return false;
        c.abort();
        out << "abort\n";
        return true;
    }

    std::mt19937_64 rng_;
    std::string tag_, srs_;
};

TEST(Differential, EnginesAnswerAlike) {
    const std::uint64_t streams = env_number("DIFFERENTIAL_STREAMS", 10000);
    const std::uint64_t first = env_number("DIFFERENTIAL_SEED", 1);
    MilterProcess native(settings_for("native"));
    MilterProcess libmilter(settings_for("libmilter"));
    ASSERT_TRUE(native.wait_for_log("(native engine)", std::chrono::seconds(5))) << native.log();
    ASSERT_TRUE(libmilter.wait_for_log("(libmilter engine)", std::chrono::seconds(5)))
        << libmilter.log();
    const std::string tag = *test_signer().sign("alice@ours.example", now());
    const std::string srs = test_srs().forward("carol@foreign.example", now())->address;
    std::uint64_t diverged = 0;
    for (std::uint64_t seed = first; seed < first + streams; ++seed) {
        Conversation a(seed, tag, srs), b(seed, tag, srs);
        const ClientOptions oa = a.options(), ob = b.options();
        auto ca = MilterClient::connect_tcp("127.0.0.1", native.port(), oa);
        auto cb = MilterClient::connect_tcp("127.0.0.1", libmilter.port(), ob);
        const std::string ta = a.run(ca), tb = b.run(cb);
        if (ta != tb && ++diverged <= 3) {
            ADD_FAILURE() << "seed " << seed << " diverges\n--- native\n"
                          << ta << "--- libmilter\n"
                          << tb;
        }
    }
    EXPECT_EQ(diverged, 0u) << "of " << streams << " streams";
    std::cout << "differential: " << streams << " streams, " << diverged << " diverged\n";
}

}  // namespace
}  // namespace backstop::test
