// Differential test of the two milter engines: the same MTA conversations, drawn at
// random from what an MTA sends (libmilter's state table is the grammar: negotiate,
// connect, HELO, then messages of MAIL, RCPT..., DATA, headers, end of headers, body,
// end of message, an abort at any stage, QUIT or QUIT_NC and a new connection), go
// to backstop-milter on the native engine and on the libmilter engine, and the
// decoded replies and modifications must be the same. Varied: protocol version 2 and
// 6; the actions and steps offered (all, some, none, with and without the no-reply
// steps); one to three messages per connection and one or two connections per
// socket (QUIT_NC); an abort at every stage; macros present and absent; ordinary,
// long and odd addresses; bounces (null sender, to valid tags, SRS and unsigned
// addresses), outbound (local sender, with and without SMTP AUTH) and forwarded mail;
// every write whole or cut in random pieces.
//
// DIFFERENTIAL_STREAMS (default 10,000) conversations from DIFFERENTIAL_SEED (default
// 1); a divergence prints the seed and both transcripts (what was sent, lines with
// ">", and what came back), and DIFFERENTIAL_STREAMS=1 DIFFERENTIAL_SEED=<seed>
// replays it (DIFFERENTIAL_SHOW=1 prints it when it passes). scripts/differential
// runs a million.
//
// The allow-list (docs/ENGINES.md): the only differences that pass, each checked
// narrowly where it occurs (both engines must do what the entry says, or the
// transcripts differ):
//  - quit-nc-outside-end-of-message: libmilter's state table takes QUIT_NC only after
//    an end of message it answered "continue" or after an abort (NX_ENDM; after an
//    abort through the skipped unknown state); elsewhere (after HELO, after a
//    refused MAIL, after an end of message answered accept, reject, tempfail or
//    discard) it ignores QUIT_NC and then the CONNECT that follows, which it never
//    answers. The native engine starts the new connection. Checked: the native
//    engine answers that CONNECT, libmilter does not (within kSilence); the stream
//    ends there.
//  - eom-data: an end of message that carries body data (no MTA sends one: Postfix
//    and Sendmail send the body in BODY packets) goes first to the body callback,
//    and libmilter calls the end-of-message callback only when that answers
//    "continue" (st_bodyend). The body callback answers "no reply" (NR_BODY, which
//    libmilter agrees with every MTA, faking it for those that lack it), so that
//    end of message is never answered. Checked: the native engine answers it,
//    libmilter does not (within kSilence); the stream ends there.
// Both are rare in the generated streams (each costs kSilence of waiting).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "milter_client.hpp"
#include "milter_process.hpp"
#include "stream_pieces.hpp"

namespace backstop::test {
namespace {

using namespace std::chrono_literals;

// How long an answer the allow-list says never comes is waited for.
constexpr auto kSilence = 400ms;

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

// One engine's daemon: the same keys and configuration for both (storm and replay
// limits off: their windows would make two runs of one stream differ in time alone).
MilterSettings settings_for(const std::string& engine) {
    MilterSettings s;
    s.engine_from_environment = false;
    s.log_level = "warning";
    // A unix socket: no delayed ACK between libmilter's separate writes at end of
    // message (TCP would add 40 ms to most streams).
    s.socket = SocketKind::unix_;
    s.extra = "storm-limit = off\nreplay-limit = 0\n[general]\nengine = " + engine + "\n";
    return s;
}

std::string socket_of(const MilterProcess& daemon) {
    return daemon.dir() + "/milter.sock";
}

enum class Engine { native, libmilter };

// The operations of one conversation, drawn from a seed; run() plays them to one
// engine and writes what came back, one line per reply, the same way for both.
class Conversation {
  public:
    Conversation(std::uint64_t seed, Engine engine, std::string tag, std::string srs)
        : rng_(seed), seed_(seed), engine_(engine), tag_(std::move(tag)), srs_(std::move(srs)) {}

    ClientOptions options() {
        ClientOptions o;
        o.timeout = std::chrono::seconds(3);  // a missing answer fails fast
        o.version = pick(4) == 0 ? 2 : 6;
        // What MTAs offer: everything (Postfix, Sendmail), no SETSYMLIST (Sendmail
        // 8.13), version 2's actions (milter_protocol = 2), headers only, and none
        // (which libmilter reads as version 1's four).
        const std::uint32_t actions[] = {milter::kAllActions, 0x1ff & ~milter::kActSetSymList, 0x3f,
                                         milter::kActAddHeaders | milter::kActChangeHeaders, 0};
        o.actions = actions[pick(5)];
        // All steps with every no-reply step, without any, with some; version 2's
        // steps; none (which libmilter reads as version 1's).
        const std::uint32_t steps[] = {
            milter::kOfferAllSteps | milter::kAllNoReply, milter::kOfferAllSteps,
            milter::kOfferAllSteps | milter::kNrHeader | milter::kNrBody, 0x7f, 0};
        o.protocol = steps[pick(5)];
        if (o.version == 2) o.protocol &= 0x7f;  // what a version 2 MTA can offer
        if (pick(3) == 0) o.split_seed = seed_ | 1;
        return o;
    }

    // Plays the conversation; the transcript, or "closed: ..." where the milter ended it.
    std::string run(MilterClient& c) {
        std::ostringstream out;
        out << "> offer v" << c.options().version << " a" << c.options().actions << " p"
            << c.options().protocol << " split " << c.options().split_seed << "\n";
        try {
            const Negotiated n = c.negotiate();
            out << "negotiated v" << n.version << " a" << n.actions << " p" << n.protocol;
            for (const auto& [stage, names] : n.macro_lists)
                out << " macros" << int(stage) << "=" << names;
            out << "\n";
            const int connections = 1 + pick(2);
            for (int k = 0; k < connections; ++k) {
                if (k > 0 && !reuse(c, out)) break;
                if (!connection(c, out)) break;
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
                                       "postmaster@ours.example", "x@OURS.EXAMPLE",
                                       "alice@sub.ours.example"};
        static const char* kForeign[] = {"carol@foreign.example",        "dave@remote.example",
                                         "\"odd local\"@remote.example", "e@[192.0.2.1]",
                                         "f@xn--bcher-kva.example",      "g%h@relay.example",
                                         "@a.example:i@j.example"};
        std::string a = local ? kLocal[pick(5)] : kForeign[pick(7)];
        if (pick(10) == 0)
            a = std::string(200 + pick(100), 'l') + "@" + (local ? "ours.example" : "far.example");
        return a;
    }

    void show(std::ostringstream& out, const char* step, const Response& r) {
        out << step << " " << to_string(r.action);
        if (!r.text.empty()) out << " " << r.text;
        out << "\n";
        // Where libmilter's state table is now, for QUIT_NC (see the allow-list).
        quit_nc_taken_ = false;
    }

    // QUIT_NC and a new connection on this socket; false when the stream ends here.
    bool reuse(MilterClient& c, std::ostringstream& out) {
        if (quit_nc_taken_) {
            c.quit_nc();
            out << "quit_nc\n";
            return true;
        }
        // Here libmilter ignores QUIT_NC and the CONNECT after it. Seen only when the
        // CONNECT is answered (no NR_CONN), and only now and then (kSilence).
        if ((c.negotiated().protocol & milter::kNrConnect) || pick(100) != 0) return false;
        c.quit_nc();
        out << "quit_nc outside an end of message\n";
        if (engine_ == Engine::native) {
            const Response r = c.conn("client.example", '4', 40000, "192.0.2.10");
            out << (r.action == Action::continue_
                        ? "allowed: quit-nc-outside-end-of-message\n"
                        : "native engine did not continue the new connection\n");
        } else {
            c.options().timeout = kSilence;
            try {
                const Response r = c.conn("client.example", '4', 40000, "192.0.2.10");
                out << "libmilter answered the CONNECT after QUIT_NC: " << to_string(r.action)
                    << "\n";
            } catch (const MilterError&) {
                out << "allowed: quit-nc-outside-end-of-message\n";
            }
        }
        return false;
    }

    // One connection; false when the stream ends in it.
    bool connection(MilterClient& c, std::ostringstream& out) {
        static const char* kClients[] = {"192.0.2.10", "198.51.100.7", "127.0.0.1", "2001:db8::5"};
        const std::string client = kClients[pick(4)];
        if (pick(2)) macros(c, out, 'C', {{"j", "mx.ours.example"}, {"{daemon_name}", "smtpd"}});
        const std::string host = pick(5) ? "client.example" : "[" + client + "]";
        const char family = client.find(':') == std::string::npos ? '4' : '6';
        const auto port = std::uint16_t(pick(2) ? 0 : 40000);
        out << "> connect " << host << " " << family << " " << port << " " << client << "\n";
        show(out, "connect", c.conn(host, family, port, client));
        if (pick(2)) macros(c, out, 'H', {{"{client_resolve}", "OK"}});
        const std::string helo = pick(6) ? "client.example" : "[192.0.2.10]";
        out << "> helo " << helo << "\n";
        show(out, "helo", c.helo(helo));
        const int messages = pick(6) == 0 ? 0 : 1 + pick(3);
        for (int m = 0; m < messages; ++m) {
            if (!message(c, out)) return false;
        }
        return true;
    }

    // One message; false when the stream ends in it.
    bool message(MilterClient& c, std::ostringstream& out) {
        const int kind = pick(4);  // 0 bounce, 1 outbound, 2 forwarded, 3 inbound mail
        std::string sender = kind == 0 ? "<>" : "<" + address(kind == 1) + ">";
        if (kind == 1 && pick(3) == 0) macros(c, out, 'M', {{"{auth_authen}", "alice"}});
        if (pick(2)) macros(c, out, 'M', {{"i", "QID" + std::to_string(pick(1000))}});
        std::vector<std::string> args{sender};
        if (pick(4) == 0) args.push_back("SIZE=1234");
        if (pick(8) == 0) args.push_back("BODY=8BITMIME");
        out << "> mail";
        for (const auto& a : args) out << " " << a;
        out << "\n";
        const Response mail = c.mail(args);
        show(out, "mail", mail);
        if (!mail.proceeds() || abort_here(c, out)) return true;
        const int rcpts = 1 + pick(3);
        bool any = false;
        for (int i = 0; i < rcpts; ++i) {
            std::string r;
            switch (pick(5)) {
                case 0:
                    r = tag_;
                    break;
                case 1:
                    r = srs_;
                    break;
                case 2:
                    r = address(true);
                    break;
                case 3:
                    r = "prvs=0000000000=alice@ours.example";  // a bad signature
                    break;
                default:
                    r = address(false);
                    break;
            }
            if (pick(3) == 0)
                macros(c, out, 'R',
                       {{"{rcpt_mailer}", "local"}, {"{rcpt_host}", ""}, {"{rcpt_addr}", "alice"}});
            out << "> rcpt <" << r << ">\n";
            const Response rr = c.rcpt({"<" + r + ">"});
            show(out, "rcpt", rr);
            any = any || rr.proceeds();
        }
        if (!any) {
            c.abort();  // every recipient refused: the MTA ends the message
            out << "abort\n";
            quit_nc_taken_ = true;
            return true;
        }
        if (abort_here(c, out)) return true;
        show(out, "data", c.data());
        if (abort_here(c, out)) return true;
        const int headers = pick(4);
        for (int h = 0; h < headers; ++h) {
            static const char* kNames[] = {"Subject", "From", "X-Backstop-Result", "Auto-Submitted",
                                           "Content-Type"};
            const std::string value = pick(8) == 0 ? std::string(3000, 'v')
                                      : pick(2)    ? "auto-replied"
                                                   : "hello";
            const char* name = kNames[pick(5)];
            out << "> header " << name << ": " << value.substr(0, 20) << " (" << value.size()
                << ")\n";
            show(out, "header", c.header(name, value));
            if (abort_here(c, out)) return true;
        }
        show(out, "eoh", c.eoh());
        if (abort_here(c, out)) return true;
        const int chunks = pick(3);
        for (int b = 0; b < chunks; ++b) {
            const std::string chunk = pick(4) ? "Hello.\r\n" : std::string(65535, 'b');
            out << "> body " << chunk.size() << " bytes\n";
            show(out, "body", c.body(chunk));
            if (abort_here(c, out)) return true;
        }
        if (pick(2)) macros(c, out, 'E', {{"i", "QIDE"}});
        if (pick(300) == 0) return eom_with_data(c, out);
        const EomResult e = c.eom();
        show(out, "eom", e.response);
        quit_nc_taken_ = e.response.action == Action::continue_;
        out << "  codes " << e.action_codes << "\n";
        if (e.new_sender) out << "  from " << *e.new_sender << "\n";
        for (const auto& a : e.added_addresses()) out << "  +rcpt " << a << "\n";
        for (const auto& d : e.deleted_recipients) out << "  -rcpt " << d << "\n";
        for (const auto& h : e.header_edits) {
            out << "  header " << int(h.kind) << " " << h.index << " " << h.name << ": "
                << (h.name == "X-Backstop-Result" && !h.value.empty() ? "(value)" : h.value)
                << "\n";
        }
        return true;
    }

    // An end of message that carries the last body data: the stream ends here.
    bool eom_with_data(MilterClient& c, std::ostringstream& out) {
        out << "eom with data\n";
        if (engine_ == Engine::native) {
            const EomResult e = c.eom("Bye.\r\n");
            out << (e.response.proceeds() || e.response.is_tempfail() || e.response.is_reject()
                        ? "allowed: eom-data\n"
                        : "native engine gave no final answer to an end of message\n");
        } else {
            c.options().timeout = kSilence;
            try {
                const EomResult e = c.eom("Bye.\r\n");
                out << "libmilter answered an end of message with data: "
                    << to_string(e.response.action) << "\n";
            } catch (const MilterError&) {
                out << "allowed: eom-data\n";
            }
        }
        return false;
    }

    void macros(MilterClient& c, std::ostringstream& out, char step,
                const std::vector<std::pair<std::string, std::string>>& pairs) {
        out << "> macros " << step;
        for (const auto& [name, value] : pairs) out << " " << name << "=" << value;
        out << "\n";
        c.macros(step, pairs);
    }

    bool abort_here(MilterClient& c, std::ostringstream& out) {
        if (pick(16) != 0) return false;
        c.abort();
        out << "abort\n";
        quit_nc_taken_ = true;
        return true;
    }

    std::mt19937_64 rng_;
    std::uint64_t seed_;
    Engine engine_;
    std::string tag_, srs_;
    bool quit_nc_taken_ = false;  // libmilter would take a QUIT_NC now
};

// Both daemons, up; what every test here starts with.
class Differential : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        native_ = new MilterProcess(settings_for("native"));
        libmilter_ = new MilterProcess(settings_for("libmilter"));
        // libmilter marks the steps a filter skips in one table for the whole process
        // (fix_stm): the first negotiation that agrees NOHELO, NOUNKNOWN, NODATA sets
        // them for every later connection. Make that happen before the first stream,
        // so that every stream meets the same table.
        MilterClient warm = libmilter_->client();
        warm.quit();
    }
    static void TearDownTestSuite() {
        delete native_;
        delete libmilter_;
    }
    static MilterProcess* native_;
    static MilterProcess* libmilter_;
};
MilterProcess* Differential::native_ = nullptr;
MilterProcess* Differential::libmilter_ = nullptr;

TEST_F(Differential, EnginesAnswerAlike) {
    const std::uint64_t streams = env_number("DIFFERENTIAL_STREAMS", 10000);
    const std::uint64_t first = env_number("DIFFERENTIAL_SEED", 1);
    const bool show = env_number("DIFFERENTIAL_SHOW", 0) != 0;  // every transcript
    const std::string tag = *test_signer().sign("alice@ours.example", now());
    const std::string srs = test_srs().forward("carol@foreign.example", now())->address;
    std::uint64_t diverged = 0, allowed = 0;
    for (std::uint64_t seed = first; seed < first + streams; ++seed) {
        Conversation a(seed, Engine::native, tag, srs), b(seed, Engine::libmilter, tag, srs);
        const ClientOptions oa = a.options(), ob = b.options();
        auto ca = MilterClient::connect_unix(socket_of(*native_), oa);
        auto cb = MilterClient::connect_unix(socket_of(*libmilter_), ob);
        const std::string ta = a.run(ca), tb = b.run(cb);
        if (show) std::cout << "seed " << seed << "\n" << ta;
        if (ta != tb) {
            if (++diverged <= 3) {
                ADD_FAILURE() << "seed " << seed << " diverges (replay: DIFFERENTIAL_STREAMS=1 "
                              << "DIFFERENTIAL_SEED=" << seed << ")\n--- native\n"
                              << ta << "--- libmilter\n"
                              << tb;
            }
        } else if (ta.find("\nallowed: ") != std::string::npos) {
            ++allowed;
        }
    }
    EXPECT_EQ(diverged, 0u) << "of " << streams << " streams";
    std::cout << "differential: " << streams << " streams from seed " << first << ", " << diverged
              << " diverged, " << allowed << " ended in an allowed difference\n";
    EXPECT_TRUE(native_->alive());
    EXPECT_TRUE(libmilter_->alive());
}

// The fuzz_milter corpus through both engines. Each input is built as the harness
// builds it (its first byte steers: bit 0 puts a valid negotiation first, bits 1 and 2
// pick its offer, the high bits where the stream is cut into up to four writes),
// written to a new connection of each engine, and every reply is read until the
// engine closes or is silent for kSilence. An input is kept when libmilter answers it
// fully: as many final answers (continue, accept, reject, tempfail, discard, reply
// code, the negotiation) as the input has commands that need one (negotiate,
// connect, HELO, MAIL, RCPT, DATA, header, end of headers, body, end of message,
// unknown, less the no-reply steps libmilter agreed). For a kept input the decoded
// replies of both must be the same, modifications included.
struct Replies {
    std::string decoded;
    std::size_t finals = 0;
    std::uint32_t steps = 0;  // the steps agreed, from the negotiation reply
};

std::uint32_t u32_at(std::string_view s, std::size_t at) {
    auto b = [&](std::size_t i) { return std::uint32_t(static_cast<unsigned char>(s[at + i])); };
    return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

std::string u32_bytes(std::uint32_t v) {
    return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

std::string printable(std::string_view data) {
    std::string s;
    for (char ch : data) s += ch == '\0' ? '|' : ch;
    return s;
}

Replies replay(MilterProcess& daemon, std::string_view stream, std::uint8_t control) {
    ClientOptions o;
    o.timeout = kSilence;
    auto c = MilterClient::connect_unix(socket_of(daemon), o);
    Replies r;
    try {
        backstop::testing::in_pieces(stream, control, [&](std::string_view piece) {
            c.send_bytes(piece);
            return true;
        });
    } catch (const MilterError&) {
        // closed while writing: what it answered is read below
    }
    for (;;) {
        std::pair<char, std::string> p;
        try {
            p = c.read_packet();
        } catch (const MilterError&) {
            break;
        }
        const auto& [code, data] = p;
        // continue, accept, reject, tempfail, discard, reply code, negotiation
        if (std::string_view("cartdyO").find(code) != std::string_view::npos) ++r.finals;
        if (code == 'O' && data.size() >= 12) r.steps = u32_at(data, 8);
        std::string shown = printable(data);
        if ((code == 'h' || code == 'm') && shown.find("X-Backstop-Result") != std::string::npos)
            shown = shown.substr(0, shown.find("X-Backstop-Result")) + "X-Backstop-Result (value)";
        r.decoded += std::string(1, code) + " " + shown + "\n";
    }
    return r;
}

// Commands of the stream that need an answer under these agreed steps.
std::size_t answers_needed(std::string_view s, std::uint32_t steps) {
    std::size_t n = 0;
    while (s.size() >= 5) {
        const std::uint32_t len = u32_at(s, 0);
        if (len == 0 || s.size() - 4 < len) break;
        const char cmd = s[4];
        std::uint32_t nr = 0;
        switch (cmd) {
            case 'C':
                nr = milter::kNrConnect;
                break;
            case 'L':
                nr = milter::kNrHeader;
                break;
            case 'N':
                nr = milter::kNrEoh;
                break;
            case 'B':
                nr = milter::kNrBody;
                break;
            case 'H':
            case 'M':
            case 'R':
            case 'T':
            case 'E':
            case 'U':
            case 'O':
                break;
            default:
                nr = ~0u;  // macros, abort, quit: never answered
        }
        if (!(steps & nr)) ++n;
        s.remove_prefix(4 + std::size_t(len));
    }
    return n;
}

TEST_F(Differential, FuzzCorpusAnsweredAlike) {
    std::size_t inputs = 0, kept = 0;
    for (const auto& entry : std::filesystem::directory_iterator(BACKSTOP_FUZZ_MILTER_CORPUS)) {
        std::ifstream in(entry.path(), std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), {});
        if (bytes.empty()) continue;
        ++inputs;
        const auto control = static_cast<std::uint8_t>(bytes[0]);
        std::string stream;
        if (control & 1) {  // as fuzz_milter.cpp builds it
            const std::string offer = u32_bytes(6) + u32_bytes(control & 4 ? 0xff : 0x1ff) +
                                      u32_bytes(control & 2 ? 0x7ff : 0x1fffff);
            stream = u32_bytes(std::uint32_t(offer.size() + 1)) + "O" + offer;
        }
        stream.append(bytes, 1);
        const Replies lib = replay(*libmilter_, stream, control);
        if (lib.finals != answers_needed(stream, lib.steps)) continue;
        ++kept;
        const Replies nat = replay(*native_, stream, control);
        EXPECT_EQ(nat.decoded, lib.decoded) << entry.path();
    }
    std::cout << "fuzz corpus: " << inputs << " inputs, " << kept
              << " answered fully by libmilter\n";
    EXPECT_GT(kept, 0u);
}

}  // namespace
}  // namespace backstop::test
