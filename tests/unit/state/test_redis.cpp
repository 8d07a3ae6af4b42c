// The Redis store against a real redis-server started on loopback by the test.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "backstop/state/store.hpp"
#include "redis_server.hpp"

using namespace backstop;
using backstop::test::RedisServer;

TEST(StateRedis, SharedCountersRecordsAndOutage) {
    // No skip: scripts/test installs redis-server; a missing one is a failed setup.
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    RedisServer server;
    ASSERT_TRUE(server.running());
    std::string spec = server.spec(3);
    auto mx1 = open_state(spec);
    auto mx2 = open_state(spec);  // a second MX host
    ASSERT_TRUE(mx1.ok() && mx2.ok());

    // One window, counted across both hosts.
    EXPECT_EQ(*(*mx1)->hit("storm:a@ours.example", 1000, 600), 1u);
    EXPECT_EQ(*(*mx2)->hit("storm:a@ours.example", 1001, 600), 2u);
    EXPECT_EQ(*(*mx1)->hit("storm:a@ours.example", 1001, 600), 3u);
    EXPECT_EQ(*(*mx2)->hit("storm:a@ours.example", 1600, 600), 3u);  // 1000 fell out: (1000, 1600]

    EXPECT_TRUE(*(*mx1)->record_bounce("Gone@Remote.example", "5.1.1", "userunknown", 100));
    EXPECT_TRUE(*(*mx2)->record_bounce("gone@remote.example", "5.1.1", "userunknown", 200));
    auto r = (*mx2)->bounce("gone@remote.example", 300);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->count, 2u);
    EXPECT_EQ((*r)->first_seen, 100);
    EXPECT_EQ((*r)->last_seen, 200);
    EXPECT_EQ((*mx1)->bounces(300)->size(), 1u);
    EXPECT_TRUE(*(*mx1)->forget("gone@remote.example"));
    EXPECT_TRUE((*mx2)->bounces(300)->empty());

    // Outage: calls fail fast (deadline) instead of hanging, then recover.
    server.stop();
    auto t0 = std::chrono::steady_clock::now();
    auto down = (*mx1)->hit("storm:a@ours.example", 2000, 600);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(down.ok());
    EXPECT_NE(down.error().message.find("redis://127.0.0.1"), std::string::npos)
        << down.error().message;
    EXPECT_LT(took, std::chrono::seconds(5));  // a hang guard, not a timing assertion
    server.start();
    ASSERT_TRUE(server.running());
    auto back = (*mx1)->hit("storm:b@ours.example", 2000, 600);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, 1u);
}

// Every event is its own member of the window even when two hosts record one in
// the same second (identical containers have the same pid, too).
TEST(StateRedis, SameSecondEventsFromTwoHostsAllCount) {
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    RedisServer server;
    ASSERT_TRUE(server.running());
    auto mx1 = open_state(server.spec());
    auto mx2 = open_state(server.spec());
    ASSERT_TRUE(mx1.ok() && mx2.ok());
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(*(*mx1)->hit("k", 1000, 600), std::uint64_t(2 * i + 1));
        EXPECT_EQ(*(*mx2)->hit("k", 1000, 600), std::uint64_t(2 * i + 2));
    }
}

TEST(StateRedis, BounceExpiry) {
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    RedisServer server;
    ASSERT_TRUE(server.running());
    StateOptions o;
    o.bounce_ttl = 1;  // Redis expires keys on its own clock: one second
    auto s = open_state(server.spec(), o);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->record_bounce("gone@remote.example", "5.1.1", "userunknown", 100).ok());
    EXPECT_TRUE((*s)->bounce("gone@remote.example", 100)->has_value());
    bool gone = false;
    for (int i = 0; i < 40 && !gone; ++i) {  // polls; up to 4 s
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        gone = !(*s)->bounce("gone@remote.example", 100)->has_value();
    }
    EXPECT_TRUE(gone);
    EXPECT_TRUE((*s)->bounces(100)->empty());
}

TEST(StateRedis, BadSpecs) {
    EXPECT_FALSE(open_state("redis://").ok());
    EXPECT_FALSE(open_state("redis://127.0.0.1:0").ok());
    EXPECT_FALSE(open_state("redis://127.0.0.1:65536").ok());
    EXPECT_FALSE(open_state("redis://127.0.0.1:99999/0").ok());
    EXPECT_FALSE(open_state("redis://host:port").ok());
    EXPECT_FALSE(open_state("redis://host:6379/x").ok());
    EXPECT_TRUE(open_state("redis://127.0.0.1:1/0").ok());  // lazy: connects on first use
}

// Expiry by our clock (the `now` every call gets), as the SQLite store does: a record
// whose last bounce is older than the ttl is gone for reads and starts over on the
// next bounce, whatever Redis's own EXPIRE (on the server's clock) has done yet.
TEST(StateRedis, BounceExpiryFollowsTheCallersClock) {
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    RedisServer server;
    ASSERT_TRUE(server.running());
    StateOptions o;
    o.bounce_ttl = 1000;
    auto s = open_state(server.spec(), o);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->record_bounce("gone@remote.example", "5.1.1", "userunknown", 100).ok());
    ASSERT_TRUE((*s)->record_bounce("gone@remote.example", "5.1.1", "userunknown", 200).ok());
    EXPECT_EQ((**(*s)->bounce("gone@remote.example", 1199)).count, 2u);
    EXPECT_FALSE((*s)->bounce("gone@remote.example", 1200)->has_value());
    EXPECT_TRUE((*s)->bounces(1200)->empty());
    ASSERT_TRUE((*s)->record_bounce("gone@remote.example", "5.1.2", "hostunknown", 1300).ok());
    auto r = (*s)->bounce("gone@remote.example", 1300);
    ASSERT_TRUE(r.ok() && r->has_value());
    EXPECT_EQ((*r)->count, 1u);
    EXPECT_EQ((*r)->first_seen, 1300);
    EXPECT_EQ((*s)->bounces(1300)->size(), 1u);
}
