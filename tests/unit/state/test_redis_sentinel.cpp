// Sentinel: the store finds the master through Sentinel, and after the master dies
// its calls fail fast until the replica is promoted, then go on there, counts and
// all, without a restart. The whole fleet wants a password: the store gives the
// same one to the Sentinels and to the master.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "backstop/state/store.hpp"
#include "redis_server.hpp"

using namespace backstop;
using namespace backstop::test;

namespace {

constexpr const char* kPassword = "fleet-pw-31";

std::string cli(int port, const std::string& command) {
    std::string line = "redis-cli --no-auth-warning -a " + std::string(kPassword) + " -p " +
                       std::to_string(port) + " " + command + " 2>/dev/null";
    std::string out;
    if (FILE* p = popen(line.c_str(), "r")) {
        char buf[256];
        while (fgets(buf, sizeof buf, p)) out += buf;
        pclose(p);
    }
    return out;
}

}  // namespace

TEST(StateRedisSentinel, FollowsAFailover) {
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    // No 5 s wait before the replica's first sync (Redis 7's diskless default).
    RedisServer master(
        {"--repl-diskless-sync-delay", "0", "--requirepass", kPassword, "--masterauth", kPassword});
    ASSERT_TRUE(master.running());
    RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(master.port()), "--requirepass",
                         kPassword, "--masterauth", kPassword});
    ASSERT_TRUE(replica.running());
    // The replica in sync before Sentinel looks (it learns replicas from the master).
    for (int i = 0; i < 50 && !replicas_caught_up(master.port(), 1, 100, kPassword); ++i) {
    }
    RedisSentinel sentinel(master.port(), kPassword);
    ASSERT_TRUE(sentinel.running());
    const int dead = free_tcp_port();

    // Unreachable Sentinels are each named.
    auto lost = open_state("redis-sentinel://127.0.0.1:" + std::to_string(dead) + "/mymaster");
    ASSERT_TRUE(lost.ok());
    auto e = (*lost)->check();
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("no Sentinel named the master mymaster: cannot connect to "
                                     "127.0.0.1:" +
                                     std::to_string(dead) + ": Connection refused"),
              std::string::npos)
        << e.error().message;

    // The first Sentinel is down: the second answers.
    const std::string spec = "redis-sentinel://127.0.0.1:" + std::to_string(dead) +
                             ",127.0.0.1:" + std::to_string(sentinel.port()) + "/mymaster/0";
    StateOptions o;
    o.timeout_ms = 3000;  // a loaded test machine; a dead master refuses at once anyway
    o.redis_password = kPassword;
    auto mx1 = open_state(spec, o), mx2 = open_state(spec, o);
    ASSERT_TRUE(mx1.ok() && mx2.ok());
    for (int i = 0; i < 10; ++i) {
        auto n = (i % 2 ? *mx2 : *mx1)->hit("storm:a@ours.example", 1000, 600);
        ASSERT_TRUE(n.ok()) << n.error().message;
        EXPECT_EQ(*n, std::uint64_t(i + 1));
    }
    // The ten on the replica before the kill (a bare WAIT would not say so).
    ASSERT_TRUE(replicas_caught_up(master.port(), 1, 2000, kPassword)) << "replica not in sync";

    master.stop();
    auto t0 = std::chrono::steady_clock::now();
    int failed = 0;
    std::uint64_t next = 0;
    // Hang guard only: the failover normally takes a second or two.
    for (int i = 0; i < 600 && next == 0; ++i) {
        auto n = (i % 2 ? *mx2 : *mx1)->hit("storm:a@ours.example", 1001, 600);
        if (n) {
            next = *n;
        } else {
            ++failed;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    std::printf("failover: %d calls failed over %lld ms\n", failed, (long long)took);
    EXPECT_GT(failed, 0);  // the switch was seen
    EXPECT_EQ(next, 11u);  // counted on where the first ten went
    auto n = (failed % 2 ? *mx1 : *mx2)->hit("storm:a@ours.example", 1001, 600);
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_EQ(*n, 12u);
    EXPECT_EQ(cli(replica.port(), "ROLE").rfind("master", 0), 0u);
}
