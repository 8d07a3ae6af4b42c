// [srs] spf-check against a resolver that never answers: mail is not held up beyond
// spf-timeout, and the sender is rewritten anyway (a DNS failure means SRS). The
// daemon runs in its own mount namespace whose /etc/resolv.conf points at a UDP
// socket on loopback that this test holds open and never reads.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

#include "milter_client.hpp"
#include "milter_process.hpp"

namespace backstop::test {
namespace {

constexpr const char* kBlackHole = "127.0.0.86";

// A bound UDP port 53 that swallows every query.
struct BlackHoleDns {
    int fd = -1;
    BlackHoleDns() {
        fd = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(53);
        inet_pton(AF_INET, kBlackHole, &a.sin_addr);
        if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            close(fd);
            fd = -1;
        }
    }
    ~BlackHoleDns() {
        if (fd >= 0) close(fd);
    }
};

Message forwarded(const std::string& sender, int n) {
    Message m;
    m.client_addr = "127.0.0.1";  // internal: we relay it on
    m.client_host = "localhost";
    m.sender = "<" + sender + ">";
    m.recipients = {"<dave@remote.example>"};
    m.queue_id = "SPF" + std::to_string(n);
    m.headers = {{"From", sender}, {"Subject", "forwarded"}};
    return m;
}

}  // namespace

TEST(SpfDns, ResolverThatNeverAnswersDoesNotHoldMail) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (port 53, a mount namespace)";
    ASSERT_EQ(std::system("command -v unshare >/dev/null"), 0) << "unshare (util-linux) missing";
    // A container without CAP_SYS_ADMIN cannot make a mount namespace: say so loudly.
    if (std::system("unshare --mount --propagation private /bin/true 2>/dev/null") != 0)
        GTEST_SKIP() << "SKIPPED: no mount namespaces here (unshare --mount failed)";
    BlackHoleDns dns;
    ASSERT_GE(dns.fd, 0) << "cannot bind " << kBlackHole << ":53";

    // The resolver itself would give up only after 2 x 4 s.
    const std::string resolv = "/tmp/backstop-resolv." + std::to_string(getpid());
    std::ofstream(resolv) << "nameserver " << kBlackHole << "\noptions timeout:4 attempts:2\n";

    MilterSettings s;
    s.wrapper = {"/usr/bin/unshare",
                 "--mount",
                 "--propagation",
                 "private",
                 "/bin/sh",
                 "-c",
                 "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
                 resolv};
    s.args = {"--srs.spf-check",   "true", "--srs.spf-relay-address", "192.0.2.1",
              "--srs.spf-timeout", "300"};
    MilterProcess milter(s);

    for (int i = 0; i < 4; ++i) {
        // A new domain each time: nothing comes from the verdict cache.
        const std::string sender = "carol@sender" + std::to_string(i) + ".example";
        auto client = milter.client();
        auto t0 = std::chrono::steady_clock::now();
        Transcript t = client.send_message(forwarded(sender, i));
        auto took = std::chrono::steady_clock::now() - t0;
        ASSERT_TRUE(t.eom.has_value()) << milter.log();
        ASSERT_TRUE(t.eom->new_sender.has_value()) << milter.log();
        EXPECT_EQ(t.eom->new_sender->rfind("<SRS0=", 0), 0u) << *t.eom->new_sender;
        // Not a benchmark: proof that the answer did not wait for the resolver (8 s).
        EXPECT_LT(took, std::chrono::seconds(4)) << i;
        client.quit();
    }
    EXPECT_TRUE(milter.wait_for_log(" reason=srs0 spf=timeout", std::chrono::seconds(2)))
        << milter.log();
    unlink(resolv.c_str());
}

}  // namespace backstop::test
