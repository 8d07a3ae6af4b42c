// Two backstop-milter instances (two MX hosts) sharing one Redis: a bounce storm
// split across both is limited at the shared count.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

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
// replica is promoted both milters go on counting there, where the counts were.
TEST(Fleet, SentinelFailoverUnderLoad) {
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    // No 5 s wait before the replica's first sync (Redis 7's diskless default).
    // A backlog that holds the whole load, so the replica never falls back to a full
    // resync in the middle of it (which a master killed at that moment cuts short).
    // Logs in each server's own directory, printed when the carry-over check fails.
    const std::vector<std::string> log = {"--logfile", "redis.log", "--loglevel", "notice"};
    RedisServer master({"--repl-diskless-sync-delay", "0", "--repl-backlog-size", "64mb", log[0],
                        log[1], log[2], log[3]});
    RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(master.port()), log[0], log[1],
                         log[2], log[3]});
    ASSERT_TRUE(master.running() && replica.running());
    ASSERT_TRUE(replicas_caught_up(master.port())) << "replica not in sync";
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
    // The 20 on the replica before the kill: not a bare WAIT (see replicas_caught_up).
    ASSERT_TRUE(replicas_caught_up(master.port())) << "replica not in sync";

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

    // The 20 storm bounces counted before the kill were on the replica (checked
    // above; the master is SIGKILLed, so what it had not yet sent is lost), so the
    // promoted replica carries them over: both milters, counting there, reach the
    // limit of 30 after exactly 10 more. More means counts lost in the failover;
    // then what the new master holds and the servers' logs are printed.
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
    EXPECT_EQ(passed, 10);
    if (passed != 10) {
        const std::string cli = "redis-cli -p " + std::to_string(replica.port()) + " ";
        const std::string dump = cli + "INFO replication; " + cli +
                                 "ZRANGE backstop:storm:storm@ours.example 0 -1 WITHSCORES; " +
                                 cli + "TTL backstop:storm:storm@ours.example; cat '" +
                                 replica.dir() + "/redis.log' '" + master.dir() + "/redis.log'";
        std::fflush(stdout);
        EXPECT_EQ(std::system(dump.c_str()), 0);
    }
}

}  // namespace backstop::test
