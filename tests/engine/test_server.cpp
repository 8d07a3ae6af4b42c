// Server (milter/native/server.hpp) in-process: serve() on a loopback or unix socket in a
// thread of the test, driven by the blocking milter client of the protocol tests.
// Timeouts here only guard against a hang; no test asserts how fast anything is.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backstop/base/metrics.hpp"
#include "backstop/state/store.hpp"
#include "engine_support.hpp"
#include "listener.hpp"
#include "milter_client.hpp"
#include "policy_holder.hpp"
#include "protocol.hpp"
#include "server.hpp"

namespace {

using namespace std::chrono_literals;
using backstop::Config;
using backstop::Counter;
using backstop::FixedClock;
using backstop::Metrics;
using backstop::engine_test::base_config;
using backstop::engine_test::build;
using backstop::engine_test::kNow;
using backstop::engine_test::TempDir;
namespace bm = backstop::milter;
namespace bt = backstop::test;

constexpr auto kHangGuard = 60s;

enum class Where { inet, unix_socket, inet6 };

// Polls cond until it holds or the guard time passes.
template <class F>
bool eventually(F cond, std::chrono::seconds guard = kHangGuard) {
    const auto deadline = std::chrono::steady_clock::now() + guard;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

class MilterServer : public ::testing::Test {
  protected:
    TempDir dir;
    Config config = base_config(dir);
    FixedClock clock{kNow};
    Metrics metrics;
    bm::PolicyHolder holder;
    std::unique_ptr<bm::Server> server;
    std::thread serving;
    std::shared_future<void> served;
    std::string serve_error;
    Where where = Where::inet;
    std::uint16_t port = 0;
    std::string socket_path;

    static bm::ServerOptions options() {
        bm::ServerOptions o;
        o.loops = 2;
        o.max_workers = 16;
        o.idle_timeout_seconds = 3600;
        o.stop_grace_seconds = 120;  // longer than the hang guard: a test that ends
                                     // before it saw the message end, not the grace
        return o;
    }

    // Opens the listener and runs serve() in a thread. False (and the reason added
    // as a failure or skip) when the socket cannot be opened.
    bool start(bm::ServerOptions o = options(), Where w = Where::inet) {
        where = w;
        holder.set(build(config));
        auto store = backstop::open_state(config.state);
        EXPECT_TRUE(store.ok()) << store.error().message;
        if (!store.ok()) return false;
        holder.set_state(*store, config.state);

        bm::ListenSpec spec;
        if (w == Where::unix_socket) {
            spec.kind = bm::ListenSpec::Kind::unix_path;
            socket_path = dir.file("milter.sock");
            spec.path = socket_path;
        } else {
            spec.kind =
                w == Where::inet6 ? bm::ListenSpec::Kind::inet6 : bm::ListenSpec::Kind::inet;
            spec.host = w == Where::inet6 ? "::1" : "127.0.0.1";
            spec.port = 0;
        }
        std::string error;
        const int fd = bm::open_listener(spec, error);
        if (fd < 0) {
            if (w == Where::inet6) return false;  // no IPv6 loopback here: the test skips
            ADD_FAILURE() << "open_listener: " << error;
            return false;
        }
        if (w != Where::unix_socket) {
            sockaddr_storage addr{};
            socklen_t len = sizeof addr;
            EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
            port =
                ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
        }
        server = std::make_unique<bm::Server>(holder, metrics, clock, o);
        auto done = std::make_shared<std::promise<void>>();
        served = done->get_future().share();
        serving = std::thread([this, fd, done] {
            try {
                server->serve(fd);
            } catch (const std::exception& e) {
                serve_error = e.what();
            }
            done->set_value();
        });
        return true;
    }

    // True once serve() has returned (and its thread is joined).
    bool wait_served(std::chrono::seconds guard = kHangGuard) {
        if (served.wait_for(guard) != std::future_status::ready) return false;
        if (serving.joinable()) serving.join();
        EXPECT_EQ(serve_error, "");
        return true;
    }
    bool has_served() const { return served.wait_for(0s) == std::future_status::ready; }

    void TearDown() override {
        if (!server) return;
        server->stop();
        if (!wait_served(std::chrono::seconds(180))) {
            std::fprintf(stderr, "serve() did not return after stop(): giving up\n");
            std::abort();
        }
        server.reset();
    }

    bt::MilterClient connect_raw(bt::ClientOptions o = {}) {
        if (where == Where::unix_socket) return bt::MilterClient::connect_unix(socket_path, o);
        return bt::MilterClient::connect_tcp(where == Where::inet6 ? "::1" : "127.0.0.1", port, o);
    }
    bt::MilterClient client() {
        auto c = connect_raw();
        c.negotiate();
        return c;
    }

    std::string tag(const std::string& address) {
        return *holder.get()->batv()->sign(address, kNow);
    }

    // An MTA connection with a message under way: negotiated, connected, MAIL sent.
    bt::MilterClient message_under_way() {
        auto c = client();
        EXPECT_TRUE(c.conn("relay.ours.example", '4', 1, "192.0.2.10").proceeds());
        EXPECT_TRUE(c.mail({"<alice@ours.example>"}).proceeds());
        EXPECT_TRUE(eventually([&] { return server->messages_in_progress() == 1u; }));
        return c;
    }

    // Connecting fails once the listener is shut (connects that won the race are let go).
    bool refused() {
        return eventually([&] {
            try {
                connect_raw(bt::ClientOptions{std::chrono::milliseconds(2000)});
                return false;
            } catch (const bt::MilterError&) {
                return true;
            }
        });
    }
};

bt::Message outbound(const std::string& sender, const std::string& rcpt = "bob@remote.example") {
    bt::Message m;
    m.client_addr = "192.0.2.10";  // in internal-networks
    m.client_host = "relay.ours.example";
    m.sender = bt::angle(sender);
    m.recipients = {bt::angle(rcpt)};
    m.headers = {{"From", sender}, {"Subject", "engine test"}};
    return m;
}

bt::Message bounce_to(const std::string& rcpt) {
    bt::Message m;
    m.client_addr = "198.51.100.7";
    m.client_host = "mx.remote.example";
    m.sender = "<>";
    m.recipients = {bt::angle(rcpt)};
    m.headers = {{"From", "MAILER-DAEMON@mx.remote.example"},
                 {"Subject", "Undelivered Mail Returned to Sender"}};
    return m;
}

// What went wrong with one exchange; empty when all is as expected.
std::string expect_signed(const bt::Transcript& t, const std::string& tagged) {
    if (!t.eom) return "no end of message reached";
    if (t.eom->new_sender != "<" + tagged + ">")
        return "sender " + t.eom->new_sender.value_or("(unchanged)") + ", want <" + tagged + ">";
    if (t.eom->response.action != bt::Action::continue_)
        return std::string("end of message answered ") + bt::to_string(t.eom->response.action);
    return {};
}

std::string expect_refused_unsigned(const bt::Transcript& t, const std::string& rcpt) {
    if (t.rcpts.size() != 1) return "no RCPT answer";
    if (!t.rcpts[0].is_reject() || !t.rcpts[0].text.starts_with("550 5.7.1 <" + rcpt + ">"))
        return "RCPT answered " + std::string(bt::to_string(t.rcpts[0].action)) + " " +
               t.rcpts[0].text;
    if (t.eom) return "end of message reached";
    return {};
}

std::string expect_rewritten(const bt::Transcript& t, const std::string& tagged,
                             const std::string& original) {
    if (!t.eom) return "no end of message reached";
    if (t.eom->deleted_recipients != std::vector<std::string>{"<" + tagged + ">"})
        return "recipients removed: " + std::to_string(t.eom->deleted_recipients.size());
    if (t.eom->added_addresses() != std::vector<std::string>{"<" + original + ">"})
        return "recipients added: " + std::to_string(t.eom->added_recipients.size());
    if (t.eom->response.action != bt::Action::continue_)
        return std::string("end of message answered ") + bt::to_string(t.eom->response.action);
    return {};
}

std::string expect_storm_tempfail(const bt::Transcript& t) {
    if (t.rcpts.size() != 1) return "no RCPT answer";
    if (!t.rcpts[0].is_tempfail())
        return "RCPT answered " + std::string(bt::to_string(t.rcpts[0].action)) + " " +
               t.rcpts[0].text;
    if (t.eom) return "end of message reached";
    return {};
}

// ---- Messages ----

TEST_F(MilterServer, OutboundMessageSignedOverTcp) {
    ASSERT_TRUE(start());
    auto c = client();
    EXPECT_EQ(c.negotiated().version, 6u);
    auto t = c.send_message(outbound("alice@ours.example"));
    EXPECT_EQ(expect_signed(t, tag("alice@ours.example")), "");
    EXPECT_EQ(t.eom->action_codes, "ec");
    EXPECT_TRUE(eventually([&] { return server->connections() == 1u; }));
    c.quit();
    EXPECT_TRUE(c.wait_closed(30s));
    EXPECT_TRUE(eventually([&] { return server->connections() == 0u; }));
    EXPECT_EQ(metrics.get(Counter::batv_signed), 1u);
}

TEST_F(MilterServer, OutboundMessageSignedOverUnixSocket) {
    ASSERT_TRUE(start(options(), Where::unix_socket));
    auto c = client();
    EXPECT_EQ(
        expect_signed(c.send_message(outbound("alice@ours.example")), tag("alice@ours.example")),
        "");
}

TEST_F(MilterServer, OutboundMessageSignedOverIpv6) {
    if (!start(options(), Where::inet6)) GTEST_SKIP() << "no IPv6 loopback";
    auto c = client();
    EXPECT_EQ(
        expect_signed(c.send_message(outbound("alice@ours.example")), tag("alice@ours.example")),
        "");
}

// One MTA connection's whole life: two outbound messages, QUIT_NC, then an
// inbound session with an unsigned bounce and a bounce to a valid tag.
std::string converse(bt::MilterClient& c, const std::string& user, const std::string& tagged) {
    const std::string address = user + "@ours.example";
    std::string why = expect_signed(c.send_message(outbound(address)), tagged);
    if (!why.empty()) return "first outbound: " + why;
    why = expect_signed(c.send_message(outbound(address), false), tagged);
    if (!why.empty()) return "second outbound: " + why;
    c.quit_nc();
    why = expect_refused_unsigned(c.send_message(bounce_to(address)), address);
    if (!why.empty()) return "unsigned bounce: " + why;
    why = expect_rewritten(c.send_message(bounce_to(tagged), false), tagged, address);
    if (!why.empty()) return "bounce to tag: " + why;
    return {};
}

TEST_F(MilterServer, FiftyConcurrentConnections) {
    ASSERT_TRUE(start());
    constexpr int kClients = 50;
    std::vector<std::string> tags;
    for (int i = 0; i < kClients; ++i)
        tags.push_back(tag("user" + std::to_string(i) + "@ours.example"));
    std::mutex mutex;
    std::vector<std::string> failures;
    std::atomic<int> connected{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i) {
        threads.emplace_back([&, i] {
            std::string why;
            try {
                auto c = client();
                // Every client holds its connection open until all are connected.
                ++connected;
                eventually([&] { return connected.load() == kClients; });
                why = converse(c, "user" + std::to_string(i), tags[std::size_t(i)]);
                c.quit();
            } catch (const std::exception& e) {
                why = e.what();
            }
            if (!why.empty()) {
                std::lock_guard<std::mutex> lock(mutex);
                failures.push_back("client " + std::to_string(i) + ": " + why);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();
    EXPECT_EQ(metrics.get(Counter::batv_signed), 2u * kClients);
    EXPECT_EQ(metrics.get(Counter::rejected_unsigned_bounce), std::uint64_t(kClients));
    EXPECT_EQ(metrics.get(Counter::recipients_reversed), std::uint64_t(kClients));
    EXPECT_TRUE(eventually([&] { return server->connections() == 0u; }));
    EXPECT_EQ(server->messages_in_progress(), 0u);
}

// ---- State store: memory in process, or SQLite through the worker pool ----

class MilterServerState : public MilterServer, public ::testing::WithParamInterface<std::string> {
  protected:
    void SetUp() override {
        config.state = GetParam() == "memory" ? "memory" : "sqlite:" + dir.file("state.db");
        config.storm_limit = "3/10m";  // so the store's counts show in the replies
    }
};

TEST_P(MilterServerState, SameResultsWhateverTheStore) {
    ASSERT_TRUE(start());
    const std::string tagged = tag("alice@ours.example");
    auto c = client();
    EXPECT_EQ(expect_signed(c.send_message(outbound("alice@ours.example")), tagged), "");
    c.quit_nc();
    EXPECT_EQ(expect_refused_unsigned(c.send_message(bounce_to("alice@ours.example")),
                                      "alice@ours.example"),
              "");
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(expect_rewritten(c.send_message(bounce_to(tagged), false), tagged,
                                   "alice@ours.example"),
                  "")
            << "bounce " << i;
    }
    // The fourth bounce in the window is one too many.
    EXPECT_EQ(expect_storm_tempfail(c.send_message(bounce_to(tagged), false)), "");
    EXPECT_EQ(expect_storm_tempfail(c.send_message(bounce_to(tagged), false)), "");
    // Outbound mail still goes through on the same store.
    c.quit_nc();
    EXPECT_EQ(expect_signed(c.send_message(outbound("alice@ours.example")), tagged), "");
}

TEST_P(MilterServerState, TwentyConcurrentConnections) {
    ASSERT_TRUE(start());
    constexpr int kClients = 20;
    std::vector<std::string> tags;
    for (int i = 0; i < kClients; ++i)
        tags.push_back(tag("user" + std::to_string(i) + "@ours.example"));
    std::mutex mutex;
    std::vector<std::string> failures;
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i) {
        threads.emplace_back([&, i] {
            const std::string user = "user" + std::to_string(i);
            const std::string& tagged = tags[std::size_t(i)];
            std::string why;
            try {
                auto c = client();
                why = converse(c, user, tagged);  // the first bounce to the tag
                for (int n = 1; n < 3 && why.empty(); ++n) {
                    why = expect_rewritten(c.send_message(bounce_to(tagged), false), tagged,
                                           user + "@ours.example");
                }
                if (why.empty())
                    why = expect_storm_tempfail(c.send_message(bounce_to(tagged), false));
                c.quit();
            } catch (const std::exception& e) {
                why = e.what();
            }
            if (!why.empty()) {
                std::lock_guard<std::mutex> lock(mutex);
                failures.push_back("client " + std::to_string(i) + ": " + why);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();
    EXPECT_EQ(metrics.get(Counter::recipients_reversed), 3u * kClients);
    EXPECT_EQ(metrics.get(Counter::rejected_storm), std::uint64_t(kClients));
    EXPECT_TRUE(eventually([&] { return server->connections() == 0u; }));
}

INSTANTIATE_TEST_SUITE_P(Stores, MilterServerState, ::testing::Values("memory", "sqlite"),
                         [](const auto& info) { return info.param; });

// ---- Broken and silent peers ----

TEST_F(MilterServer, OversizedPacketClosesOnlyThatConnection) {
    ASSERT_TRUE(start());
    auto good = client();
    ASSERT_TRUE(good.conn("relay", '4', 1, "192.0.2.10").proceeds());
    for (std::uint32_t len : {bm::proto::kMaxPacket + 1, 0u}) {
        auto bad = client();
        bad.send_bytes(backstop::engine_test::u32(len) + "B" + std::string(100, 'x'));
        EXPECT_TRUE(bad.wait_closed(30s)) << "length " << len;
    }
    // The others go on.
    EXPECT_EQ(expect_signed(good.send_message(outbound("alice@ours.example"), false),
                            tag("alice@ours.example")),
              "");
    auto next = client();
    EXPECT_EQ(
        expect_signed(next.send_message(outbound("carl@ours.example")), tag("carl@ours.example")),
        "");
}

TEST_F(MilterServer, PacketOfExactlyMaxLengthIsTaken) {
    ASSERT_TRUE(start());
    auto c = client();
    auto m = outbound("alice@ours.example");
    m.body = std::string(bm::proto::kMaxPacket - 1, 'b');  // one body packet of kMaxPacket
    EXPECT_EQ(expect_signed(c.send_message(m), tag("alice@ours.example")), "");
}

TEST_F(MilterServer, CommandBeforeNegotiationClosesTheConnection) {
    ASSERT_TRUE(start());
    auto c = connect_raw();
    c.send_packet('M', std::string("<a@b>\0", 6));
    EXPECT_TRUE(c.wait_closed(30s));
}

TEST_F(MilterServer, IdleTimeoutClosesASilentConnection) {
    auto o = options();
    o.idle_timeout_seconds = 1;
    ASSERT_TRUE(start(o));
    auto c = client();
    EXPECT_TRUE(c.wait_closed(kHangGuard));
    EXPECT_TRUE(eventually([&] { return server->connections() == 0u; }));
    // The server still serves.
    auto next = client();
    EXPECT_EQ(
        expect_signed(next.send_message(outbound("alice@ours.example")), tag("alice@ours.example")),
        "");
}

TEST_F(MilterServer, PeerGoneMidMessageIsForgotten) {
    ASSERT_TRUE(start());
    {
        auto c = client();
        ASSERT_TRUE(c.conn("relay", '4', 1, "192.0.2.10").proceeds());
        ASSERT_TRUE(c.mail({"<alice@ours.example>"}).proceeds());
        EXPECT_TRUE(eventually([&] { return server->messages_in_progress() == 1u; }));
    }  // closed without QUIT
    EXPECT_TRUE(eventually([&] { return server->connections() == 0u; }));
    EXPECT_EQ(server->messages_in_progress(), 0u);
}

// ---- Stopping ----

TEST_F(MilterServer, StopWaitsForTheMessageUnderWay) {
    ASSERT_TRUE(start());
    auto c = message_under_way();
    server->stop();
    // The listener closes at once; the message goes on.
    EXPECT_TRUE(refused());
    EXPECT_FALSE(has_served());
    std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(has_served()) << "serve() returned with a message under way";
    ASSERT_TRUE(c.rcpt({"<bob@remote.example>"}).proceeds());
    c.header("Subject", "x");
    c.eoh();
    c.body("Hello.\r\n");
    auto eom = c.eom();
    EXPECT_EQ(eom.new_sender, "<" + tag("alice@ours.example") + ">");
    EXPECT_EQ(eom.action_codes, "ec");
    EXPECT_TRUE(wait_served());
}

TEST_F(MilterServer, StopWaitsForTheMessageOnAWorker) {
    config.state = "sqlite:" + dir.file("state.db");  // RCPT and EOM run on workers
    ASSERT_TRUE(start());
    auto c = message_under_way();
    server->stop();
    EXPECT_TRUE(refused());
    ASSERT_TRUE(c.rcpt({"<bob@remote.example>"}).proceeds());
    EXPECT_FALSE(has_served());
    auto eom = c.eom();
    EXPECT_EQ(eom.new_sender, "<" + tag("alice@ours.example") + ">");
    EXPECT_TRUE(wait_served());
}

TEST_F(MilterServer, StopEndsAfterTheGraceTime) {
    auto o = options();
    o.stop_grace_seconds = 1;
    ASSERT_TRUE(start(o));
    auto c = message_under_way();
    server->stop();
    EXPECT_TRUE(wait_served());
    EXPECT_EQ(server->messages_in_progress(), 1u);  // left to the MTA to tempfail
}

TEST_F(MilterServer, StopWithNoMessageUnderWayReturnsWithoutTheGraceTime) {
    ASSERT_TRUE(start());  // grace 120 s, more than the guard
    auto idle = client();
    ASSERT_TRUE(idle.conn("relay", '4', 1, "192.0.2.10").proceeds());
    auto done = client();
    EXPECT_EQ(
        expect_signed(done.send_message(outbound("alice@ours.example")), tag("alice@ours.example")),
        "");
    server->stop();
    EXPECT_TRUE(wait_served());
}

TEST_F(MilterServer, StopBeforeAnyConnection) {
    ASSERT_TRUE(start());
    server->stop();
    EXPECT_TRUE(wait_served());
}

TEST_F(MilterServer, ListenerRefusesConnectionsAfterStop) {
    ASSERT_TRUE(start());
    { auto c = client(); }
    server->stop();
    ASSERT_TRUE(wait_served());
    EXPECT_THROW(connect_raw(), bt::MilterError);
}

TEST_F(MilterServer, UnixListenerRefusesConnectionsAfterStop) {
    ASSERT_TRUE(start(options(), Where::unix_socket));
    server->stop();
    ASSERT_TRUE(wait_served());
    EXPECT_THROW(connect_raw(), bt::MilterError);
}

// A state store whose counters wait until released: a command on a worker that
// outlives the grace time.
class BlockingStore final : public backstop::StateStore {
  public:
    explicit BlockingStore(std::shared_ptr<backstop::StateStore> inner)
        : inner_(std::move(inner)) {}
    backstop::Result<std::uint64_t, backstop::Failure> hit(const std::string& key,
                                                           backstop::UnixTime now,
                                                           backstop::UnixTime window) override {
        std::unique_lock<std::mutex> lock(mutex_);
        entered_ = true;
        changed_.notify_all();
        changed_.wait(lock, [this] { return released_; });
        return inner_->hit(key, now, window);
    }
    backstop::Result<bool, backstop::Failure> record_bounce(const std::string& a,
                                                            const std::string& s,
                                                            const std::string& r,
                                                            backstop::UnixTime now) override {
        return inner_->record_bounce(a, s, r, now);
    }
    backstop::Result<std::optional<backstop::BounceRecord>, backstop::Failure> bounce(
        const std::string& a, backstop::UnixTime now) override {
        return inner_->bounce(a, now);
    }
    backstop::Result<std::vector<backstop::BounceRecord>, backstop::Failure> bounces(
        backstop::UnixTime now) override {
        return inner_->bounces(now);
    }
    backstop::Result<bool, backstop::Failure> forget(const std::string& a) override {
        return inner_->forget(a);
    }

    bool wait_entered() {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, kHangGuard, [this] { return entered_; });
    }
    void release() {
        std::lock_guard<std::mutex> lock(mutex_);
        released_ = true;
        changed_.notify_all();
    }

  private:
    std::shared_ptr<backstop::StateStore> inner_;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool entered_ = false;
    bool released_ = false;
};

// serve() gives up on a message at the grace time while its RCPT still runs on a
// worker. Destroying the Server then waits for that worker (which re-arms its
// connection through the Loop) and closes every connection still open, the idle
// one too.
TEST_F(MilterServer, DestroyingTheServerClosesItsConnectionsAfterTheWorkers) {
    config.state = "sqlite:" + dir.file("state.db");  // RCPT runs on a worker
    auto o = options();
    o.stop_grace_seconds = 1;
    ASSERT_TRUE(start(o));
    auto store = std::make_shared<BlockingStore>(holder.state());
    holder.set_state(store, "blocking");
    auto idle = client();
    ASSERT_TRUE(idle.conn("relay", '4', 1, "192.0.2.10").proceeds());
    auto busy = client();
    ASSERT_TRUE(busy.conn("mx.remote.example", '4', 1, "198.51.100.7").proceeds());
    ASSERT_TRUE(busy.mail({"<>"}).proceeds());
    busy.send_packet('R', "<" + tag("alice@ours.example") + ">" + std::string(1, '\0'));
    ASSERT_TRUE(store->wait_entered());
    server->stop();
    ASSERT_TRUE(wait_served());  // at the grace time, the worker still busy
    std::thread destroy([this] { server.reset(); });
    std::this_thread::sleep_for(200ms);  // let the destructor start before the release
    store->release();
    destroy.join();
    EXPECT_TRUE(idle.wait_closed(30s));
    EXPECT_TRUE(busy.wait_closed(30s));  // after the RCPT's answer
}

// ---- Listen specs and opening the listener ----

bm::ListenSpec parsed(const std::string& text) {
    bm::ListenSpec s;
    std::string error;
    EXPECT_TRUE(bm::parse_listen_spec(text, s, error)) << text << ": " << error;
    return s;
}

TEST(ListenSpec, InetWithHost) {
    auto s = parsed("inet:8891@127.0.0.1");
    EXPECT_EQ(s.kind, bm::ListenSpec::Kind::inet);
    EXPECT_EQ(s.port, 8891);
    EXPECT_EQ(s.host, "127.0.0.1");
    EXPECT_EQ(parsed("inet:25@mx.example").host, "mx.example");
    EXPECT_EQ(parsed("inet:0@localhost").port, 0);
    EXPECT_EQ(parsed("inet:65535@h").port, 65535);
}

TEST(ListenSpec, InetWithoutHostMeansAnyAddress) {
    auto s = parsed("inet:8891");
    EXPECT_EQ(s.kind, bm::ListenSpec::Kind::inet);
    EXPECT_EQ(s.port, 8891);
    EXPECT_EQ(s.host, "");
}

TEST(ListenSpec, Inet6WithBrackets) {
    auto s = parsed("inet6:8891@[::1]");
    EXPECT_EQ(s.kind, bm::ListenSpec::Kind::inet6);
    EXPECT_EQ(s.port, 8891);
    EXPECT_EQ(s.host, "::1");
    EXPECT_EQ(parsed("inet6:8891@::1").host, "::1");
    EXPECT_EQ(parsed("inet6:8891").host, "");
}

TEST(ListenSpec, UnixAndLocal) {
    for (std::string prefix : {"unix:", "local:"}) {
        auto s = parsed(prefix + "/run/backstop/milter.sock");
        EXPECT_EQ(s.kind, bm::ListenSpec::Kind::unix_path);
        EXPECT_EQ(s.path, "/run/backstop/milter.sock");
        EXPECT_EQ(s.host, "");
    }
}

TEST(ListenSpec, Errors) {
    for (std::string bad : std::vector<std::string>{
             "", "8891", "tcp:8891@127.0.0.1", "inet:", "inet:@127.0.0.1", "inet:abc@h",
             "inet:-1@h", "inet:65536@h", "inet:123456", "inet: 25",
             "inet6:", "unix:", "local:", "unix:" + std::string(200, 'x'), "INET:25"}) {
        bm::ListenSpec s;
        std::string error;
        EXPECT_FALSE(bm::parse_listen_spec(bad, s, error)) << bad;
        EXPECT_FALSE(error.empty()) << bad;
    }
}

TEST(OpenListener, RefusesToReplaceAFileThatIsNotASocket) {
    TempDir dir;
    bm::ListenSpec spec;
    spec.kind = bm::ListenSpec::Kind::unix_path;
    spec.path = dir.write("not-a-socket", "data");
    std::string error;
    EXPECT_EQ(bm::open_listener(spec, error), -1);
    EXPECT_NE(error.find("not a socket"), std::string::npos) << error;
    std::ifstream in(spec.path);
    std::string content;
    in >> content;
    EXPECT_EQ(content, "data");
}

TEST(OpenListener, ReplacesAStaleSocket) {
    TempDir dir;
    bm::ListenSpec spec;
    spec.kind = bm::ListenSpec::Kind::unix_path;
    spec.path = dir.file("milter.sock");
    std::string error;
    int first = bm::open_listener(spec, error);
    ASSERT_GE(first, 0) << error;
    close(first);  // the file stays, as after a crash
    int second = bm::open_listener(spec, error);
    EXPECT_GE(second, 0) << error;
    if (second >= 0) close(second);
}

TEST(OpenListener, ReportsAPortInUse) {
    bm::ListenSpec spec;
    spec.kind = bm::ListenSpec::Kind::inet;
    spec.host = "127.0.0.1";
    std::string error;
    int first = bm::open_listener(spec, error);
    ASSERT_GE(first, 0) << error;
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ASSERT_EQ(getsockname(first, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    spec.port = ntohs(addr.sin_port);
    EXPECT_EQ(bm::open_listener(spec, error), -1);
    EXPECT_NE(error.find(std::to_string(spec.port)), std::string::npos) << error;
    close(first);
}

}  // namespace
