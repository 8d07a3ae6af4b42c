// Two backstop-milter instances (two MX hosts) sharing one Redis: a bounce storm
// split across both is limited at the shared count.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "backstop/batv.hpp"
#include "milter_client.hpp"
#include "milter_process.hpp"

namespace backstop::test {
namespace {

int free_tcp_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

bool listening(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
}

struct Redis {
    int port = free_tcp_port();
    pid_t pid = -1;
    Redis() {
        pid = fork();
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            std::string p = std::to_string(port);
            execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", static_cast<char*>(nullptr));
            _exit(127);
        }
        for (int i = 0; i < 100 && !listening(port); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ~Redis() {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
};

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
    Redis redis;
    ASSERT_TRUE(listening(redis.port));
    MilterSettings s;
    s.args = {"--state", "redis://127.0.0.1:" + std::to_string(redis.port) + "/0",
              "--inbound.storm-limit", "3/10m"};
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
