// Type=notify: the daemon tells systemd (the datagram socket in $NOTIFY_SOCKET) when
// it listens, around each reload, and when it stops.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "milter_process.hpp"

namespace backstop::test {
namespace {

// A bound datagram socket standing in for systemd's notify socket.
struct NotifySocket {
    std::string path = "/tmp/backstop-notify." + std::to_string(getpid());
    int fd = -1;
    NotifySocket() {
        unlink(path.c_str());
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            close(fd);
            fd = -1;
        }
        timeval tv{10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~NotifySocket() {
        if (fd >= 0) close(fd);
        unlink(path.c_str());
    }
    // The next message, or "" after 10 s.
    std::string next() {
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, std::size_t(n)) : std::string();
    }
};

}  // namespace

TEST(Notify, ReadyReloadingStopping) {
    NotifySocket sd;
    ASSERT_GE(sd.fd, 0);
    setenv("NOTIFY_SOCKET", sd.path.c_str(), 1);  // inherited by the daemon only
    MilterProcess milter;
    unsetenv("NOTIFY_SOCKET");

    std::string ready = sd.next();
    EXPECT_EQ(ready.rfind("READY=1\n", 0), 0u) << ready;
    EXPECT_NE(ready.find("MAINPID=" + std::to_string(milter.pid())), std::string::npos) << ready;

    milter.signal(SIGUSR1);
    EXPECT_EQ(sd.next(), "RELOADING=1");
    EXPECT_EQ(sd.next(), "READY=1");

    EXPECT_EQ(milter.terminate(), 0);
    EXPECT_EQ(sd.next(), "STOPPING=1");
}

}  // namespace backstop::test
