// The Redis store against a real redis-server started on loopback by the test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "backstop/state.hpp"

using namespace backstop;

namespace {

int free_port() {
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

bool port_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
}

class RedisServer {
  public:
    explicit RedisServer(int port) : port_(port) { start(); }
    ~RedisServer() { stop(); }
    void start() {
        pid_ = fork();
        if (pid_ == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            std::string p = std::to_string(port_);
            execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--loglevel", "warning",
                   static_cast<char*>(nullptr));
            _exit(127);
        }
        for (int i = 0; i < 100 && !port_open(port_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    void stop() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }
    bool running() const { return port_open(port_); }

  private:
    int port_;
    pid_t pid_ = -1;
};

}  // namespace

TEST(StateRedis, SharedCountersRecordsAndOutage) {
    // No skip: scripts/test installs redis-server; a missing one is a failed setup.
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
    int port = free_port();
    RedisServer server(port);
    ASSERT_TRUE(server.running());
    std::string spec = "redis://127.0.0.1:" + std::to_string(port) + "/3";
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
    auto r = (*mx2)->bounce("gone@remote.example");
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->count, 2u);
    EXPECT_EQ((*r)->first_seen, 100);
    EXPECT_EQ((*r)->last_seen, 200);
    EXPECT_EQ((*mx1)->bounces()->size(), 1u);
    EXPECT_TRUE(*(*mx1)->forget("gone@remote.example"));
    EXPECT_TRUE((*mx2)->bounces()->empty());

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

TEST(StateRedis, BadSpecs) {
    EXPECT_FALSE(open_state("redis://").ok());
    EXPECT_FALSE(open_state("redis://host:port").ok());
    EXPECT_FALSE(open_state("redis://host:6379/x").ok());
    EXPECT_TRUE(open_state("redis://127.0.0.1:1/0").ok());  // lazy: connects on first use
}
