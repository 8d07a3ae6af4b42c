// The SRS alias records (StateStore::put_alias / alias) in postsrsd 2's layout:
// SQLite's kv table and Redis's PostSRSd/ALIAS@1 keys, read back by plain SQL and
// plain Redis commands as postsrsd 2 reads them.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "backstop/state/store.hpp"
#include "redis_server.hpp"
#include "temp_dir.hpp"

using namespace backstop;

namespace {

constexpr const char* kAlias = "177RE26INPKI1O95KN4J23EVADPI3JDD@1";
constexpr const char* kSender =
    "a.very.long.sender.address.with.many.parts.for.testing.only@subdomain.of.a.long."
    "example-domain.org";

// Round trip and expiry at the store's own clock (now): lt = now + ttl, gone at lt.
void round_trip(StateStore& s) {
    EXPECT_FALSE(s.alias(kAlias, 1000)->has_value());
    ASSERT_TRUE(s.put_alias(kAlias, kSender, 1000, 500).ok());
    auto got = s.alias(kAlias, 1499);
    ASSERT_TRUE(got.ok()) << got.error().message;
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ(**got, kSender);
    EXPECT_FALSE(s.alias(kAlias, 1500)->has_value());  // expired: not returned
    EXPECT_FALSE(s.alias(kAlias, 1499)->has_value());  // and removed
    // Written again, it lives again (postsrsd 2 replaces on conflict).
    ASSERT_TRUE(s.put_alias(kAlias, kSender, 2000, 500).ok());
    EXPECT_TRUE(s.alias(kAlias, 2100)->has_value());
    EXPECT_FALSE(s.alias("OTHER@1", 2100)->has_value());
}

std::string sql_one(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    std::string out = "(error)";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
        out = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)
                  ? reinterpret_cast<const char*>(sqlite3_column_text(st, 0))
                  : "(none)";
    }
    sqlite3_finalize(st);
    return out;
}

}  // namespace

TEST(SrsAliasStore, Memory) {
    auto s = open_state("memory");
    ASSERT_TRUE(s.ok());
    round_trip(**s);
}

TEST(SrsAliasStore, SqliteRoundTripAndPostsrsdSchema) {
    backstop::testing::TempDir dir("backstop-alias");
    const std::string path = dir.file("state.db");
    {
        auto s = open_state("sqlite:" + path);
        ASSERT_TRUE(s.ok()) << s.error().message;
        round_trip(**s);
    }
    // What postsrsd 2 creates and reads: the table, its index, and SELECT v by k.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sql_one(db, "SELECT sql FROM sqlite_master WHERE name = 'kv'"),
              "CREATE TABLE kv (k TEXT NOT NULL UNIQUE ON CONFLICT REPLACE, v TEXT NOT NULL, lt "
              "INTEGER NOT NULL)");
    EXPECT_EQ(sql_one(db, "SELECT sql FROM sqlite_master WHERE name = 'ltidx'"),
              "CREATE INDEX ltidx ON kv (lt)");
    EXPECT_EQ(sql_one(db, std::string("SELECT v FROM kv WHERE k = '") + kAlias + "'"), kSender);
    EXPECT_EQ(sql_one(db, std::string("SELECT lt FROM kv WHERE k = '") + kAlias + "'"), "2500");
    // An alias postsrsd 2 wrote (INSERT INTO kv (k, v, lt)) is one we reverse.
    ASSERT_EQ(sqlite3_exec(db,
                           "INSERT INTO kv (k, v, lt) VALUES "
                           "('DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ@1', 'test@otherdomain.com', 9000)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
    auto again = open_state("sqlite:" + path);  // the schema again on an existing file
    ASSERT_TRUE(again.ok()) << again.error().message;
    auto got = (*again)->alias("DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ@1", 8999);
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ(**got, "test@otherdomain.com");
    EXPECT_TRUE((*again)->alias(kAlias, 2100)->has_value());  // survived the reopen
}

TEST(SrsAliasStore, RedisSetexKeysAndExpiry) {
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    backstop::test::RedisServer server;
    ASSERT_TRUE(server.running());
    StateOptions o;
    o.timeout_ms = 5000;  // a loaded CI machine must not turn a slow reply into a failure
    auto s = open_state(server.spec(2), o);
    ASSERT_TRUE(s.ok());
    auto none = (*s)->alias(kAlias, 0);
    ASSERT_TRUE(none.ok()) << none.error().message;
    EXPECT_FALSE(none->has_value());
    ASSERT_TRUE((*s)->put_alias(kAlias, kSender, 0, 21 * 86400).ok());
    auto got = (*s)->alias(kAlias, 0);
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ(**got, kSender);

    // As postsrsd 2 reads and writes it: GET / SETEX PostSRSd/ALIAS@1, in the same db.
    redisContext* c = redisConnect("127.0.0.1", server.port());
    ASSERT_TRUE(c && !c->err);
    auto* sel = static_cast<redisReply*>(redisCommand(c, "SELECT 2"));
    freeReplyObject(sel);
    auto* v = static_cast<redisReply*>(redisCommand(c, "GET PostSRSd/%s", kAlias));
    ASSERT_TRUE(v && v->type == REDIS_REPLY_STRING);
    EXPECT_EQ(std::string(v->str, v->len), kSender);
    freeReplyObject(v);
    auto* ttl = static_cast<redisReply*>(redisCommand(c, "TTL PostSRSd/%s", kAlias));
    ASSERT_TRUE(ttl && ttl->type == REDIS_REPLY_INTEGER);
    EXPECT_GT(ttl->integer, 21 * 86400 - 60);  // SETEX with max-age days
    EXPECT_LE(ttl->integer, 21 * 86400);
    freeReplyObject(ttl);
    auto* w = static_cast<redisReply*>(
        redisCommand(c, "SETEX PostSRSd/DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ@1 %u %s", 86400u,
                     "test@otherdomain.com"));
    freeReplyObject(w);
    redisFree(c);
    got = (*s)->alias("DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ@1", 0);
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ(**got, "test@otherdomain.com");

    // Redis expires it on its own clock: one second.
    ASSERT_TRUE((*s)->put_alias("SHORT@1", kSender, 0, 1).ok());
    bool gone = false;
    for (int i = 0; i < 40 && !gone; ++i) {  // polls; up to 4 s
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        auto r = (*s)->alias("SHORT@1", 0);
        ASSERT_TRUE(r.ok()) << r.error().message;
        gone = !r->has_value();
    }
    EXPECT_TRUE(gone);

    // Down: an error, for on-state-error, not an empty answer.
    server.stop();
    EXPECT_FALSE((*s)->alias(kAlias, 0).ok());
    EXPECT_FALSE((*s)->put_alias(kAlias, kSender, 0, 60).ok());
}
