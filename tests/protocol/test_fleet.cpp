// Two backstop-milter instances (two MX hosts) sharing one Redis: a bounce storm
// split across both is limited at the shared count.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "backstop/envelope/batv.hpp"
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

}  // namespace backstop::test
