#include "backstop/state/store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "temp_dir.hpp"

using namespace backstop;

namespace {

// The same checks for every store.
void exercise(StateStore& s) {
    // Window arithmetic: events older than the window fall out; the boundary is exclusive.
    EXPECT_EQ(*s.hit("k", 1000, 600), 1u);
    EXPECT_EQ(*s.hit("k", 1300, 600), 2u);
    EXPECT_EQ(*s.hit("k", 1599, 600), 3u);
    EXPECT_EQ(*s.hit("k", 1600, 600), 3u);  // 1000 left: (1000, 1600]
    EXPECT_EQ(*s.hit("other", 1600, 600), 1u);
    EXPECT_EQ(*s.hit("k", 5000, 600), 1u);

    EXPECT_FALSE(s.bounce("gone@remote.example", 100)->has_value());
    EXPECT_TRUE(*s.record_bounce("Gone@Remote.example", "5.1.1", "userunknown", 100));
    EXPECT_TRUE(*s.record_bounce("gone@remote.example", "5.1.10", "userunknown", 200));
    auto r = s.bounce("GONE@remote.example", 300);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->address, "gone@remote.example");
    EXPECT_EQ((*r)->count, 2u);
    EXPECT_EQ((*r)->status, "5.1.10");
    EXPECT_EQ((*r)->first_seen, 100);
    EXPECT_EQ((*r)->last_seen, 200);
    s.record_bounce("a@b.example", "5.1.2", "hostunknown", 300);
    EXPECT_EQ(s.bounces(300)->size(), 2u);
    EXPECT_TRUE(*s.forget("gone@remote.example"));
    EXPECT_FALSE(*s.forget("gone@remote.example"));
    EXPECT_EQ(s.bounces(300)->size(), 1u);
}

TEST(StateMemory, Behaviour) {
    auto s = open_state("memory");
    ASSERT_TRUE(s.ok());
    exercise(**s);
}

TEST(StateSqlite, BehaviourAndPersistence) {
    backstop::testing::TempDir dir("backstop-state");
    std::string path = dir.file("state.db");
    {
        auto s = open_state("sqlite:" + path);
        ASSERT_TRUE(s.ok()) << s.error().message;
        exercise(**s);
    }
    auto again = open_state("sqlite:" + path);
    ASSERT_TRUE(again.ok());
    auto all = (*again)->bounces(300);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 1u);  // survived the reopen
    EXPECT_EQ(all->front().address, "a@b.example");
    EXPECT_EQ(*(*again)->hit("k", 5100, 600), 2u);
}

// With a ttl, a record that saw no bounce for that long is gone (reads leave it
// out), and a new bounce starts its count over.
void expiry(StateStore& s) {
    s.record_bounce("old@remote.example", "5.1.1", "userunknown", 1000);
    s.record_bounce("old@remote.example", "5.1.1", "userunknown", 1500);
    s.record_bounce("new@remote.example", "5.1.1", "userunknown", 1900);
    EXPECT_TRUE(s.bounce("old@remote.example", 2499)->has_value());
    EXPECT_EQ(s.bounces(2499)->size(), 2u);
    EXPECT_FALSE(s.bounce("old@remote.example", 2500)->has_value());  // 1500 + ttl 1000
    auto left = s.bounces(2500);
    ASSERT_EQ(left->size(), 1u);
    EXPECT_EQ(left->front().address, "new@remote.example");
    s.record_bounce("old@remote.example", "5.1.2", "hostunknown", 2600);
    auto again = s.bounce("old@remote.example", 2600);
    ASSERT_TRUE(again->has_value());
    EXPECT_EQ((*again)->count, 1u);
    EXPECT_EQ((*again)->first_seen, 2600);
}

StateOptions ttl_1000() {
    StateOptions o;
    o.bounce_ttl = 1000;
    return o;
}

}  // namespace

TEST(StateMemory, BounceExpiry) {
    auto s = open_state("memory", ttl_1000());
    ASSERT_TRUE(s.ok());
    expiry(**s);
}

TEST(StateSqlite, BounceExpiry) {
    backstop::testing::TempDir dir("backstop-state");
    std::string path = dir.file("state.db");
    auto s = open_state("sqlite:" + path, ttl_1000());
    ASSERT_TRUE(s.ok()) << s.error().message;
    expiry(**s);
}

TEST(StateSqlite, ReaderDoesNotCreate) {
    backstop::testing::TempDir dir("backstop-state");
    std::string path = dir.file("state.db");
    StateOptions reader;
    reader.create = false;
    auto r = open_state("sqlite:" + path, reader);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("no such database"), std::string::npos) << r.error().message;
    EXPECT_NE(::access(path.c_str(), F_OK), 0);  // nothing left behind
    ASSERT_TRUE(open_state("sqlite:" + path).ok());
    EXPECT_TRUE(open_state("sqlite:" + path, reader).ok());
}

TEST(StateOpen, BadSpecs) {
    EXPECT_FALSE(open_state("postgres://x").ok());
    EXPECT_FALSE(open_state("sqlite:").ok());
    auto r = open_state("sqlite:/nonexistent-dir/x/state.db");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("/nonexistent-dir/x/state.db"), std::string::npos);
}

TEST(Rate, Parse) {
    auto r = parse_rate("20/10m");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->first, 20u);
    EXPECT_EQ(r->second, 600);
    EXPECT_EQ(parse_rate("5/1h")->second, 3600);
    EXPECT_EQ(parse_rate("5/30")->second, 30);
    EXPECT_EQ(parse_rate("1/2d")->second, 172800);
    for (const char* bad : {"", "20", "/10m", "0/10m", "20/0m", "20/10x", "a/10m", "20/m"}) {
        EXPECT_FALSE(parse_rate(bad).ok()) << bad;
    }
}
