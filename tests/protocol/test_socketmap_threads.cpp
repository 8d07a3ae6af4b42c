// Layer 3: the socketmap's threads in the real backstop-milter. Each connection is
// served by a thread of its own (socketmap_server.hpp); these tests hold many at
// once, and stop the daemon while threads are blocked in read and in send.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/keyring.hpp"
#include "milter_process.hpp"
#include "socketmap_client.hpp"

namespace backstop::test {
namespace {

std::string tag(const std::string& address) {
    BatvKeys keys;
    keys.keys.push_back({kBatvKeyNumber, kBatvSecret});
    return *BatvSigner(keys, BatvOptions{7, false}).sign(address, std::time(nullptr));
}

MilterSettings socketmap_settings() {
    MilterSettings s;
    s.socketmap = SocketmapKind::unix_;
    s.log_level = "warning";  // a lookup per debug line would fill the log
    return s;
}

TEST(SocketmapThreads, ManyConnectionsServedAtOnce) {
    MilterProcess milter(socketmap_settings());
    constexpr int kClients = 8, kConnectionsEach = 8, kRounds = 20;
    std::vector<std::thread> clients;
    std::vector<int> answered(kClients, 0);
    std::vector<std::string> errors(kClients);
    for (int t = 0; t < kClients; ++t) {
        clients.emplace_back([&, t] {
            try {
                // Every connection open before any is used: one thread each at once.
                std::vector<SocketmapClient> conns;
                for (int i = 0; i < kConnectionsEach; ++i)
                    conns.push_back(SocketmapClient::connect_unix(milter.socketmap_path()));
                for (int r = 0; r < kRounds; ++r) {
                    for (int i = 0; i < kConnectionsEach; ++i) {
                        const std::string user =
                            "u" + std::to_string(t) + "-" + std::to_string(i) + "@ours.example";
                        if (conns[std::size_t(i)].query("reverse", tag(user)) != "OK " + user)
                            throw SocketmapError("wrong answer for " + user);
                        ++answered[std::size_t(t)];
                    }
                }
            } catch (const std::exception& e) {
                errors[std::size_t(t)] = e.what();
            }
        });
    }
    for (auto& c : clients) c.join();
    for (int t = 0; t < kClients; ++t) {
        EXPECT_EQ(errors[std::size_t(t)], "") << "client " << t;
        EXPECT_EQ(answered[std::size_t(t)], kConnectionsEach * kRounds) << "client " << t;
    }
    EXPECT_TRUE(milter.alive()) << milter.log();
}

TEST(SocketmapThreads, StopEndsConnectionsBlockedInReadAndInSend) {
    MilterProcess milter(socketmap_settings());
    // One connection idle after a lookup: its thread waits in read.
    auto idle = SocketmapClient::connect_unix(milter.socketmap_path());
    ASSERT_EQ(idle.query("reverse", tag("alice@ours.example")), "OK alice@ours.example");
    // One that sends requests and never reads the answers: once both socket buffers
    // are full, its thread waits in send.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, milter.socketmap_path().c_str(), sizeof sun.sun_path - 1);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
    std::string batch;
    for (int i = 0; i < 1000; ++i) batch += netstring("forward carol@foreign.example");
    std::size_t sent = 0;
    for (int i = 0; i < 100000; ++i) {  // a hang guard: 100,000 tries at most
        const ssize_t n = ::send(fd, batch.data(), batch.size(), MSG_NOSIGNAL);
        if (n > 0) {
            sent += std::size_t(n);
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            // Full now; full again after a pause means the server stopped reading.
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            if (::send(fd, batch.data(), batch.size(), MSG_NOSIGNAL) < 0 && errno == EAGAIN) break;
            continue;
        }
        FAIL() << "send: " << std::strerror(errno);
    }
    EXPECT_GT(sent, 0u);
    // SIGTERM must end both threads and the daemon with 0, not after the grace time's
    // SIGKILL (which terminate() reports as -1).
    EXPECT_EQ(milter.terminate(std::chrono::seconds(10)), 0) << milter.log();
    ::close(fd);
}

}  // namespace
}  // namespace backstop::test
