// The milter and the admin CLI against a Redis that wants a password: the password
// comes from redis-password-file (a key file), --check-config --connect reaches the
// server, and every failure says which it is, without the password.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <ctime>

#include "backstop/envelope/batv.hpp"
#include "milter_client.hpp"
#include "milter_process.hpp"
#include "redis_server.hpp"
#include "temp_dir.hpp"

namespace backstop::test {

TEST(RedisAuth, MilterCheckConfigAndBouncesCommand) {
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    const std::string password = "pw-7Hq2-fleet";
    RedisServer redis({"--requirepass", password});
    ASSERT_TRUE(redis.running());
    backstop::testing::TempDir dir("backstop-redis-auth");
    const std::string pw = dir.write("redis.password", password + "\n");
    MilterSettings s;
    s.general = "state = " + redis.spec(4) + "\nredis-password-file = " + pw + "\n";
    s.args = {"--inbound.storm-limit", "1/10m"};
    MilterProcess mx(s);

    // The store works through the milter: the second bounce exceeds the limit of 1.
    BatvKeys keys;
    keys.keys.push_back({kBatvKeyNumber, kBatvSecret});
    std::string tagged =
        *BatvSigner(keys, {}).sign("storm@ours.example", UnixTime(std::time(nullptr)));
    for (int i = 0; i < 2; ++i) {
        Message m;
        m.client_addr = "192.0.2.25";
        m.client_host = "mx.remote.example";
        m.sender = "<>";
        m.recipients = {"<" + tagged + ">"};
        m.queue_id = "AUTH" + std::to_string(i);
        auto client = mx.client();
        Transcript t = client.send_message(m);
        ASSERT_EQ(t.rcpts.size(), 1u);
        EXPECT_EQ(t.rcpts[0].is_tempfail(), i == 1) << i;
    }
    EXPECT_EQ(mx.log().find("state-error"), std::string::npos) << mx.log();

    auto check =
        run_command({BACKSTOP_MILTER, "--config", mx.config_path(), "--check-config", "--connect"});
    EXPECT_EQ(check.status, 0) << check.output;
    EXPECT_NE(check.output.find("state " + redis.spec(4) + " answers"), std::string::npos)
        << check.output;
    auto list = run_command({BACKSTOP_CLI, "bounces", "list", "--config", mx.config_path()});
    EXPECT_EQ(list.status, 0) << list.output;

    // A wrong password: --check-config alone passes (it does not connect), --connect
    // and the CLI name the refusal, never the password.
    dir.write("redis.password", "not-it\n");
    EXPECT_EQ(run_command({BACKSTOP_MILTER, "--config", mx.config_path(), "--check-config"}).status,
              0);
    check =
        run_command({BACKSTOP_MILTER, "--config", mx.config_path(), "--check-config", "--connect"});
    EXPECT_EQ(check.status, 1);
    EXPECT_NE(check.output.find("refused the password of the default user (WRONGPASS"),
              std::string::npos)
        << check.output;
    list = run_command({BACKSTOP_CLI, "bounces", "list", "--config", mx.config_path()});
    EXPECT_EQ(list.status, 1);
    EXPECT_NE(list.output.find("WRONGPASS"), std::string::npos) << list.output;
    for (const auto& out : {check.output, list.output})
        EXPECT_EQ(out.find("not-it"), std::string::npos) << out;

    // Readable by others: refused before anything connects, the file named.
    chmod(pw.c_str(), 0644);
    check = run_command({BACKSTOP_MILTER, "--config", mx.config_path(), "--check-config"});
    EXPECT_EQ(check.status, 1);
    EXPECT_NE(check.output.find("redis-password-file: " + pw + ": mode 0644"), std::string::npos)
        << check.output;
    list = run_command({BACKSTOP_CLI, "bounces", "list", "--config", mx.config_path()});
    EXPECT_EQ(list.status, 2);
    EXPECT_NE(list.output.find(pw), std::string::npos) << list.output;
}

// A milter started with no password for a Redis that wants one still starts (mail
// follows on-state-error) and its log says at once what is wrong.
TEST(RedisAuth, StartLogNamesAMissingPassword) {
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    RedisServer redis({"--requirepass", "secret-pw"});
    ASSERT_TRUE(redis.running());
    MilterSettings s;
    s.general = "state = " + redis.spec() + "\n";
    MilterProcess mx(s);
    EXPECT_TRUE(mx.wait_for_log("requires a password (NOAUTH", std::chrono::seconds(5)))
        << mx.log();
}

}  // namespace backstop::test
