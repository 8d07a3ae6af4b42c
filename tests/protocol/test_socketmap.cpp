// Layer 3: the socketmap of the real backstop-milter, as Postfix's socketmap client
// (and Sendmail's socket map) uses it: netstring requests over a kept-open
// connection. Expected answers come from the core library with the same fixed keys.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "backstop/base/clock.hpp"
#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/keyring.hpp"
#include "backstop/envelope/srs.hpp"
#include "milter_process.hpp"
#include "read_file.hpp"
#include "socketmap_client.hpp"
#include "temp_dir.hpp"

namespace backstop::test {
namespace {

using namespace std::chrono_literals;

std::string tag(const std::string& address, UnixTime at = now()) {
    return *test_signer().sign(address, at);
}

std::string srs(const std::string& address, UnixTime at = now()) {
    return test_srs().forward(address, at)->address;
}

MilterSettings with_socketmap(SocketmapKind kind = SocketmapKind::unix_, std::string general = {}) {
    MilterSettings s;
    s.socketmap = kind;
    s.general = std::move(general);
    return s;
}

class SocketmapTest : public ::testing::Test {
  protected:
    void start(MilterSettings settings = with_socketmap()) {
        milter_ = std::make_unique<MilterProcess>(std::move(settings));
    }
    void SetUp() override { start(); }
    void TearDown() override {
        if (!milter_) return;
        EXPECT_TRUE(milter_->alive()) << "the daemon died:\n" << milter_->log();
        if (HasFailure()) std::cerr << "--- daemon log ---\n" << milter_->log();
    }
    SocketmapClient client() const {
        if (milter_->socketmap_port() != 0)
            return SocketmapClient::connect_tcp("127.0.0.1", milter_->socketmap_port());
        return SocketmapClient::connect_unix(milter_->socketmap_path());
    }

    std::unique_ptr<MilterProcess> milter_;
};

TEST_F(SocketmapTest, ForwardAndReverseOverOneKeptOpenConnection) {
    auto c = client();
    // forward: a foreign sender becomes our SRS0, verified by the library's codec.
    std::string fwd = c.query("forward", "carol@foreign.example");
    ASSERT_EQ(fwd.rfind("OK SRS0=", 0), 0u) << fwd;
    const std::string address = fwd.substr(3);
    EXPECT_NE(address.find("=foreign.example=carol@fwd.ours.example"), std::string::npos);
    auto back = test_srs().reverse(address, now());
    ASSERT_TRUE(back.ok()) << address;
    EXPECT_EQ(back->address, "carol@foreign.example");
    // Another forwarder's SRS0 becomes SRS1.
    std::string srs1 = c.query("forward", "SRS0=abcd=2W=a.example=u@other-forwarder.example");
    EXPECT_EQ(srs1.rfind("OK SRS1=", 0), 0u) << srs1;
    // reverse: our SRS and a valid BATV tag map to the real address.
    EXPECT_EQ(c.query("reverse", address), "OK carol@foreign.example");
    EXPECT_EQ(c.query("reverse", srs1.substr(3)),
              "OK SRS0=abcd=2W=a.example=u@other-forwarder.example");
    EXPECT_EQ(c.query("reverse", tag("alice@ours.example", now() - 2 * 86400)),
              "OK alice@ours.example");
    // The same connection keeps answering.
    for (int i = 0; i < 100; ++i)
        ASSERT_EQ(c.query("reverse", tag("bob@ours.example")), "OK bob@ours.example");
}

TEST_F(SocketmapTest, PipelinedRequestsAnsweredInOrder) {
    auto c = client();
    const std::vector<std::pair<std::string, std::string>> requests = {
        {"reverse", tag("a1@ours.example")}, {"forward", "alice@ours.example"},
        {"reverse", tag("a2@ours.example")}, {"nosuchmap", "x@y.example"},
        {"reverse", tag("a3@ours.example")}, {"reverse", "a4@ours.example"},
    };
    std::string all;
    for (const auto& [name, key] : requests) all += netstring(name + " " + key);
    // Twice over, in one write each time, then split at every byte.
    c.send_raw(all + all);
    for (std::size_t i = 0; i < all.size(); ++i) c.send_raw(all.substr(i, 1));
    const std::vector<std::string> expected = {
        "OK a1@ours.example", "NOTFOUND ",
        "OK a2@ours.example", "PERM unknown map (forward or reverse)",
        "OK a3@ours.example", "NOTFOUND ",
    };
    for (int round = 0; round < 3; ++round) {
        for (const auto& want : expected) {
            auto got = c.read_reply();
            ASSERT_TRUE(got.has_value()) << "round " << round;
            EXPECT_EQ(*got, want) << "round " << round;
        }
    }
}

TEST_F(SocketmapTest, EveryNotFoundCase) {
    auto c = client();
    const std::string t = tag("alice@ours.example");
    const std::vector<std::pair<std::string, std::string>> cases = {
        // forward
        {"forward", "alice@ours.example"},      // local sender
        {"forward", ""},                        // null sender
        {"forward", "carol"},                   // partial key: user
        {"forward", "@foreign.example"},        // partial key: @domain
        {"forward", "car ol@foreign.example"},  // does not parse
        {"forward", std::string(40, 'l') + "@a-rather-long.foreign.example"},  // > 64 octets
        {"forward", srs("carol@foreign.example")},                             // already ours
        {"forward", "postmaster@fwd.ours.example"},                            // at our SRS domain
        // reverse
        {"reverse", "SRS0=FAKE=2W=victim.example=v@fwd.ours.example"},         // forged SRS
        {"reverse", srs("v@victim.example", now() - 40 * 86400)},              // stale SRS
        {"reverse", "SRS0=abcd=2W=a.example=u@other-forwarder.example"},       // foreign SRS
        {"reverse", "prvs=1" + t.substr(6, 3) + "000000=alice@ours.example"},  // forged tag
        {"reverse", tag("alice@ours.example", now() - 30 * 86400)},            // expired tag
        {"reverse", "alice@ours.example"},                                     // unsigned
        {"reverse", tag("bob@foreign.example")},  // valid tag, foreign domain
        {"reverse", "alice"},
        {"reverse", ""},
    };
    for (const auto& [name, key] : cases) EXPECT_EQ(c.query(name, key), "NOTFOUND ") << key;
}

TEST_F(SocketmapTest, SrsOffMakesForwardNotFound) {
    MilterSettings s = with_socketmap();
    s.args = {"--srs.enable", "false"};
    start(s);
    auto c = client();
    EXPECT_EQ(c.query("forward", "carol@foreign.example"), "NOTFOUND ");
    EXPECT_EQ(c.query("reverse", tag("alice@ours.example")), "OK alice@ours.example");
}

TEST_F(SocketmapTest, UnknownMapAndMalformedRequestArePerm) {
    auto c = client();
    EXPECT_EQ(c.query("canonical", "alice@ours.example"), "PERM unknown map (forward or reverse)");
    EXPECT_EQ(c.query("Forward", "carol@foreign.example"), "PERM unknown map (forward or reverse)");
    c.send_raw(netstring("forward"));
    EXPECT_EQ(c.read_reply(), "PERM malformed request: expected NAME KEY");
    // Still in step.
    EXPECT_EQ(c.query("reverse", tag("alice@ours.example")), "OK alice@ours.example");
}

TEST_F(SocketmapTest, MalformedNetstringClosesThatConnectionOnly) {
    const std::vector<std::string> bad = {
        "abc:forward x,",                                  // length not digits
        " 9:forward x,",                                   // leading junk
        ":forward x,",                                     // no length
        "9:forward x;",                                    // no ',' after the data
        netstring("reverse x@ours.example") + "5:hello!",  // the second one is bad
        std::string(25, '0'),                              // a length that never ends
    };
    auto bystander = client();
    for (const auto& bytes : bad) {
        auto c = client();
        c.send_raw(bytes);
        if (bytes.rfind("22:", 0) == 0) {
            EXPECT_EQ(c.read_reply(), "NOTFOUND ");
        }
        EXPECT_TRUE(c.closed_by_server()) << bytes;
        // Everyone else is served on.
        EXPECT_EQ(bystander.query("reverse", tag("alice@ours.example")), "OK alice@ours.example");
        EXPECT_EQ(client().query("reverse", tag("bob@ours.example")), "OK bob@ours.example");
    }
    EXPECT_TRUE(milter_->wait_for_log("socketmap: malformed netstring, closing", 5s))
        << milter_->log();
}

TEST_F(SocketmapTest, RequestOver100000BytesRefused) {
    // Exactly at the limit is a request like any other.
    auto c = client();
    const std::string key(100000 - 8, 'k');
    EXPECT_EQ(c.query("reverse", key), "NOTFOUND ");
    // One byte over: refused as soon as the length is read, then closed.
    auto over = client();
    over.send_raw("100001:");
    EXPECT_EQ(over.read_reply(), "PERM request too long");
    EXPECT_TRUE(over.closed_by_server());
    auto huge = client();
    huge.send_raw("99999999999:");
    EXPECT_EQ(huge.read_reply(), "PERM request too long");
    EXPECT_TRUE(huge.closed_by_server());
    // Answers already due go out first.
    auto piped = client();
    piped.send_raw(netstring("reverse " + tag("alice@ours.example")) + "100001:");
    EXPECT_EQ(piped.read_reply(), "OK alice@ours.example");
    EXPECT_EQ(piped.read_reply(), "PERM request too long");
    EXPECT_TRUE(piped.closed_by_server());
    EXPECT_EQ(c.query("reverse", tag("bob@ours.example")), "OK bob@ours.example");
}

TEST_F(SocketmapTest, IdleConnectionIsClosed) {
    start(with_socketmap(SocketmapKind::unix_, "socketmap-idle-timeout = 1\n"));
    auto idle = client();
    EXPECT_EQ(idle.query("reverse", tag("alice@ours.example")), "OK alice@ours.example");
    // A hang guard, not a time measurement: it must close, some time after 1 s.
    EXPECT_TRUE(idle.closed_by_server());
    // A new connection is served.
    EXPECT_EQ(client().query("reverse", tag("alice@ours.example")), "OK alice@ours.example");
}

TEST_F(SocketmapTest, ConnectionLimitHolds) {
    start(with_socketmap(SocketmapKind::unix_, "socketmap-max-connections = 2\n"));
    auto a = client();
    auto b = client();
    EXPECT_EQ(a.query("reverse", tag("a@ours.example")), "OK a@ours.example");
    EXPECT_EQ(b.query("reverse", tag("b@ours.example")), "OK b@ours.example");
    // Beyond the limit: accepted by the kernel, closed by the milter unanswered.
    for (int i = 0; i < 5; ++i) {
        auto extra = client();
        try {
            extra.send_request("reverse", tag("c@ours.example"));
        } catch (const SocketmapError&) {
            // Already closed: that is the point.
        }
        EXPECT_TRUE(extra.closed_by_server()) << i;
    }
    EXPECT_TRUE(milter_->wait_for_log("closing new ones until some close", 5s));
    // Logged once for the burst, not once per connection.
    const std::string log = milter_->log();
    std::size_t count = 0;
    for (std::size_t at = 0; (at = log.find("socketmap-max-connections", at)) != std::string::npos;
         ++at)
        ++count;
    EXPECT_EQ(count, 1u) << log;
    // The two keep working; when one goes, a new one is served.
    EXPECT_EQ(a.query("reverse", tag("a@ours.example")), "OK a@ours.example");
    { auto gone = std::move(b); }
    EXPECT_TRUE(milter_->wait_for_log("5 connection(s) were closed at once", 5s)) << milter_->log();
    auto c = client();
    EXPECT_EQ(c.query("reverse", tag("c@ours.example")), "OK c@ours.example");
}

TEST_F(SocketmapTest, ReloadChangesTheAnswersOnOpenConnections) {
    auto c = client();
    const std::string new_tag =
        *test_signer(2, "rotated-in-secret").sign("alice@ours.example", now());
    EXPECT_EQ(c.query("reverse", new_tag), "NOTFOUND ");
    // The new key signs; the old one still verifies.
    const std::string keys = milter_->dir() + "/batv.keys";
    {
        std::ofstream out(keys + ".new");
        out << "2 rotated-in-secret\n" << kBatvKeyNumber << " " << kBatvSecret << "\n";
    }
    ::chmod((keys + ".new").c_str(), 0600);
    std::filesystem::rename(keys + ".new", keys);
    milter_->reload(milter_->config_text(with_socketmap()));
    ASSERT_TRUE(milter_->wait_for_log("configuration reloaded", 10s)) << milter_->log();
    EXPECT_EQ(c.query("reverse", new_tag), "OK alice@ours.example");
    EXPECT_EQ(c.query("reverse", tag("alice@ours.example")), "OK alice@ours.example");
}

TEST_F(SocketmapTest, UnixSocketModeAndRemovalAtExit) {
    start(with_socketmap(SocketmapKind::unix_, "socket-mode = 0660\n"));
    struct stat st {};
    ASSERT_EQ(::stat(milter_->socketmap_path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    EXPECT_TRUE(milter_->wait_for_log("socketmap listening on unix:", 5s)) << milter_->log();
    EXPECT_EQ(milter_->terminate(), 0);
    EXPECT_FALSE(std::filesystem::exists(milter_->socketmap_path()));
    milter_.reset();
}

TEST_F(SocketmapTest, StaleSocketFileIsReplacedAnyOtherFileRefused) {
    backstop::testing::TempDir dir("backstop-socketmap");
    const std::string path = dir.file("stale.sock");
    {
        // A socket file left by a daemon that was killed: bound, never removed.
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
        ::close(fd);
    }
    ASSERT_TRUE(std::filesystem::is_socket(path));
    start(with_socketmap(SocketmapKind::off, "socketmap = unix:" + path + "\n"));
    auto c = SocketmapClient::connect_unix(path);
    EXPECT_EQ(c.query("reverse", tag("alice@ours.example")), "OK alice@ours.example");
    milter_.reset();
    // A file that is not a socket is never removed: the milter refuses to start.
    const std::string file = dir.write("precious", "data\n");
    try {
        start(with_socketmap(SocketmapKind::off, "socketmap = unix:" + file + "\n"));
        ADD_FAILURE() << "started over a regular file";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(file + " exists and is not a socket"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_EQ(backstop::testing::read_file(file), "data\n");
}

TEST_F(SocketmapTest, PostfixPostmapReadsTheAnswers) {
    const char* postmap = "/usr/sbin/postmap";
    if (::access(postmap, X_OK) != 0) GTEST_SKIP() << "postmap is not installed (postfix)";
    start(with_socketmap(SocketmapKind::inet));
    const std::string table =
        "socketmap:inet:127.0.0.1:" + std::to_string(milter_->socketmap_port()) + ":";
    auto q = [&](const std::string& key, const std::string& map) {
        return run_command({postmap, "-q", key, table + map});
    };
    auto r = q(tag("alice@ours.example"), "reverse");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output, "alice@ours.example\n");
    auto f = q("carol@foreign.example", "forward");
    EXPECT_EQ(f.status, 0) << f.output;
    ASSERT_EQ(f.output.rfind("SRS0=", 0), 0u) << f.output;
    auto back = q(f.output.substr(0, f.output.size() - 1), "reverse");
    EXPECT_EQ(back.output, "carol@foreign.example\n");
    // NOTFOUND: postmap exits 1 and prints nothing.
    auto none = q("alice@ours.example", "reverse");
    EXPECT_EQ(none.status, 1) << none.output;
    EXPECT_EQ(none.output, "");
    // PERM: Postfix reports the server's reason.
    auto perm = q("alice@ours.example", "nosuchmap");
    EXPECT_NE(perm.status, 0);
    EXPECT_NE(perm.output.find("unknown map (forward or reverse)"), std::string::npos)
        << perm.output;
}

TEST_F(SocketmapTest, LookupsAreCountedAndLogged) {
    const std::uint16_t stats = free_port();
    start(with_socketmap(SocketmapKind::unix_,
                         "stats-socket = inet:" + std::to_string(stats) + "@127.0.0.1\n"));
    auto c = client();
    EXPECT_EQ(c.query("forward", "carol@foreign.example").rfind("OK ", 0), 0u);
    EXPECT_EQ(c.query("forward", "alice@ours.example"), "NOTFOUND ");
    EXPECT_EQ(c.query("reverse", "alice@ours.example"), "NOTFOUND ");
    EXPECT_EQ(c.query("reverse", "alice@ours.example"), "NOTFOUND ");
    EXPECT_EQ(c.query("x", "y"), "PERM unknown map (forward or reverse)");
    auto m = run_command({BACKSTOP_MILTER, "--config", milter_->config_path(), "--stats"});
    ASSERT_EQ(m.status, 0) << m.output;
    EXPECT_NE(m.output.find("backstop_socketmap_lookups_total{map=\"forward\",result=\"ok\"} 1\n"),
              std::string::npos)
        << m.output;
    EXPECT_NE(
        m.output.find("backstop_socketmap_lookups_total{map=\"forward\",result=\"notfound\"} 1\n"),
        std::string::npos);
    EXPECT_NE(
        m.output.find("backstop_socketmap_lookups_total{map=\"reverse\",result=\"notfound\"} 2\n"),
        std::string::npos);
    EXPECT_NE(m.output.find("backstop_socketmap_lookups_total{map=\"other\",result=\"perm\"} 1\n"),
              std::string::npos);
    // Debug log: one line per lookup, with the reason a NOTFOUND has.
    EXPECT_TRUE(milter_->wait_for_log(
        "socketmap: forward alice@ours.example -> NOTFOUND (local sender)", 5s))
        << milter_->log();
}

// [srs] original-envelope = auto (the default with a sqlite state): a sender too long
// to embed leaves as the SRS0 of its postsrsd 2 alias, which the reverse map takes
// back through the store; the alias written is counted.
TEST_F(SocketmapTest, LongSenderForwardedThroughItsAlias) {
    backstop::testing::TempDir state("backstop-alias");
    const std::uint16_t stats = free_port();
    start(with_socketmap(SocketmapKind::unix_,
                         "state = sqlite:" + state.file("state.db") +
                             "\nstats-socket = inet:" + std::to_string(stats) + "@127.0.0.1\n"));
    const std::string sender =
        "a.very.long.sender.address.with.many.parts.for.testing.only@subdomain.of.a.long."
        "example-domain.org";
    auto c = client();
    const std::string fwd = c.query("forward", sender);
    EXPECT_EQ(fwd, "OK " + srs("177RE26INPKI1O95KN4J23EVADPI3JDD@1")) << fwd;
    ASSERT_EQ(fwd.rfind("OK SRS0=", 0), 0u);
    const std::string address = fwd.substr(3);
    EXPECT_NE(address.find("=1=177RE26INPKI1O95KN4J23EVADPI3JDD@fwd.ours.example"),
              std::string::npos);
    EXPECT_EQ(c.query("reverse", address), "OK " + sender);
    // Case changed on the way back: the alias is looked up upper-cased.
    std::string lower = address;
    for (auto& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_EQ(c.query("reverse", lower), "OK " + sender);
    // A short sender is embedded as before; a valid alias address never stored is
    // not found (refused like a forged one).
    EXPECT_EQ(c.query("forward", "carol@foreign.example"), "OK " + srs("carol@foreign.example"));
    EXPECT_EQ(c.query("reverse", srs("VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV@1")), "NOTFOUND ");
    auto m = run_command({BACKSTOP_MILTER, "--config", milter_->config_path(), "--stats"});
    ASSERT_EQ(m.status, 0) << m.output;
    EXPECT_NE(m.output.find("backstop_srs_aliases_written_total 1\n"), std::string::npos)
        << m.output;
    EXPECT_TRUE(
        milter_->wait_for_log("-> NOTFOUND (SRS alias VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV@1 "
                              "unknown)",
                              5s))
        << milter_->log();
}

// A store that fails: forward follows on-state-error (tempfail: TEMP); reverse of an
// alias is TEMP either way, since NOTFOUND would refuse its bounce for good.
TEST_F(SocketmapTest, AliasStoreDownIsTemp) {
    const std::string down = "state = redis://127.0.0.1:1\n";  // nothing listens there
    const std::string sender = std::string(60, 'x') + "@foreign.example";
    const std::string alias_srs = srs("177RE26INPKI1O95KN4J23EVADPI3JDD@1");
    start(with_socketmap(SocketmapKind::unix_, down + "on-state-error = tempfail\n"));
    {
        auto c = client();
        EXPECT_EQ(c.query("forward", sender).rfind("TEMP SRS alias not stored: ", 0), 0u);
        EXPECT_EQ(c.query("reverse", alias_srs).rfind("TEMP ", 0), 0u);
        EXPECT_EQ(c.query("forward", "carol@foreign.example"),
                  "OK " + srs("carol@foreign.example"));  // no alias: no store needed
    }
    start(with_socketmap(SocketmapKind::unix_, down + "on-state-error = accept\n"));
    auto c = client();
    EXPECT_EQ(c.query("forward", sender), "NOTFOUND ");
    EXPECT_EQ(c.query("reverse", alias_srs).rfind("TEMP ", 0), 0u);
}

}  // namespace
}  // namespace backstop::test
