// [srs] spf-check against a resolver that never answers: mail is not held up beyond
// spf-timeout, and the sender is rewritten anyway (a DNS failure means SRS). Against
// a resolver that answers only after seconds: 200 MTA connections at once all get
// their answers, none waiting behind the others' lookups, and an end of message that
// waits sends SMFIR_PROGRESS every 2 s, so the MTA's read timeout (10 s for Sendmail,
// each read; MilterClient reads the same way) never runs out. The daemon
// runs in its own mount namespace whose /etc/resolv.conf points at a UDP socket on
// loopback that this test holds.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "milter_client.hpp"
#include "milter_process.hpp"

namespace backstop::test {
namespace {

// Each test's resolver has an address of its own, per engine, since ctest runs the
// tests (and the suite for each engine) side by side: 127.0.0.N, N from 86.
std::string resolver_address(int test) {
    return "127.0.0." + std::to_string(86 + test + (engine_under_test() == "libmilter" ? 10 : 0));
}
const std::string kBlackHole = resolver_address(0);

// A bound UDP port 53 that swallows every query.
struct BlackHoleDns {
    int fd = -1;
    BlackHoleDns() {
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(53);
        inet_pton(AF_INET, kBlackHole.c_str(), &a.sin_addr);
        if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            close(fd);
            fd = -1;
        }
    }
    ~BlackHoleDns() {
        if (fd >= 0) close(fd);
    }
};

// A resolver on address:53 that answers every query SERVFAIL, delay after it came (an
// SPF temperror: the sender is rewritten).
class SlowDns {
  public:
    SlowDns(std::string address, std::chrono::milliseconds delay)
        : address_(std::move(address)), delay_(delay) {
        fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(53);
        inet_pton(AF_INET, address_.c_str(), &a.sin_addr);
        if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            error_ = std::strerror(errno);
            close(fd_);
            fd_ = -1;
            return;
        }
        timeval tv{0, 200000};  // the reader checks stop_ five times a second
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        reader_ = std::thread([this] { read_queries(); });
        answerer_ = std::thread([this] { answer(); });
    }
    ~SlowDns() {
        stop_ = true;
        wake_.notify_all();
        if (reader_.joinable()) reader_.join();
        if (answerer_.joinable()) answerer_.join();
        if (fd_ >= 0) close(fd_);
    }
    bool ok() const { return fd_ >= 0; }
    const std::string& address() const { return address_; }
    const std::string& error() const { return error_; }
    int queries() const { return queries_.load(); }

  private:
    struct Query {
        std::chrono::steady_clock::time_point due;
        std::string reply;
        sockaddr_in from;
    };

    // The header with QR, RA and SERVFAIL, the question as asked, nothing else.
    static std::string servfail(const char* q, std::size_t n) {
        if (n < 12) return {};
        std::size_t end = 12;
        while (end < n && q[end] != 0) end += 1 + std::size_t(static_cast<unsigned char>(q[end]));
        end += 1 + 4;  // the root label, QTYPE, QCLASS
        if (end > n) return {};
        std::string r(q, end);
        r[2] = char(0x80 | (q[2] & 0x01));                   // QR, RD as asked
        r[3] = char(0x80 | 3);                               // RA, NXDOMAIN
        for (int i = 6; i < 12; ++i) r[std::size_t(i)] = 0;  // no answers, authority, extras
        return r;
    }

    void read_queries() {
        char buf[1500];
        while (!stop_) {
            Query q{};
            socklen_t len = sizeof q.from;
            ssize_t n =
                recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&q.from), &len);
            if (n <= 0) continue;
            q.reply = servfail(buf, std::size_t(n));
            if (q.reply.empty()) continue;
            q.due = std::chrono::steady_clock::now() + delay_;
            ++queries_;
            std::lock_guard<std::mutex> lock(mutex_);
            pending_.push_back(std::move(q));
            wake_.notify_one();
        }
    }

    void answer() {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stop_) {
            if (pending_.empty()) {
                wake_.wait_for(lock, std::chrono::milliseconds(200));
                continue;
            }
            // One delay for all: the first due is the front.
            if (wake_.wait_until(lock, pending_.front().due, [&] { return stop_.load(); })) return;
            Query q = std::move(pending_.front());
            pending_.pop_front();
            lock.unlock();
            sendto(fd_, q.reply.data(), q.reply.size(), 0, reinterpret_cast<sockaddr*>(&q.from),
                   sizeof q.from);
            lock.lock();
        }
    }

    std::string address_;
    std::string error_;  // why bind failed
    std::chrono::milliseconds delay_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<int> queries_{0};
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Query> pending_;
    std::thread reader_, answerer_;
};

// The daemon in its own mount namespace, with /etc/resolv.conf from the file resolv.
MilterSettings with_resolver(const std::string& resolv) {
    MilterSettings s;
    s.wrapper = {"/usr/bin/unshare",
                 "--mount",
                 "--propagation",
                 "private",
                 "/bin/sh",
                 "-c",
                 "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
                 resolv};
    return s;
}

// Why this machine cannot run the test, or empty.
std::string cannot_run() {
    if (geteuid() != 0) return "needs root (port 53, a mount namespace)";
    if (std::system("command -v unshare >/dev/null") != 0) return "unshare (util-linux) missing";
    // A container without CAP_SYS_ADMIN cannot make a mount namespace: say so loudly.
    if (std::system("unshare --mount --propagation private /bin/true 2>/dev/null") != 0)
        return "SKIPPED: no mount namespaces here (unshare --mount failed)";
    return {};
}

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
    if (auto why = cannot_run(); !why.empty()) GTEST_SKIP() << why;
    BlackHoleDns dns;
    ASSERT_GE(dns.fd, 0) << "cannot bind " << kBlackHole << ":53";

    // The resolver itself would give up only after 2 x 4 s.
    const std::string resolv = "/tmp/backstop-resolv." + std::to_string(getpid());
    std::ofstream(resolv) << "nameserver " << kBlackHole << "\noptions timeout:4 attempts:2\n";

    MilterSettings s = with_resolver(resolv);
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

// Every SPF lookup takes 2 s: 200 connections at once, each with one forwarded
// message, all answered at end of message with no read of the MTA's waiting over 10 s
// (beyond spf's 64 lookups in flight, a check gives up at once: spf=timeout, SRS).
TEST(SpfDns, TwoHundredConnectionsOnASlowResolverAreAllAnswered) {
    if (auto why = cannot_run(); !why.empty()) GTEST_SKIP() << why;
    SlowDns dns(resolver_address(1), std::chrono::seconds(2));
    ASSERT_TRUE(dns.ok()) << "cannot bind " << dns.address() << ":53: " << dns.error();
    const std::string resolv = "/tmp/backstop-resolv-slow." + std::to_string(getpid());
    std::ofstream(resolv) << "nameserver " << dns.address() << "\noptions timeout:30 attempts:1\n";
    MilterSettings s = with_resolver(resolv);
    s.args = {"--srs.spf-check",   "true", "--srs.spf-relay-address", "192.0.2.1",
              "--srs.spf-timeout", "30000"};
    MilterProcess milter(s);

    constexpr int kConnections = 200;
    std::vector<std::string> failures(kConnections);
    std::vector<std::thread> mtas;
    for (int i = 0; i < kConnections; ++i) {
        mtas.emplace_back([&, i] {
            try {
                auto client = milter.client();  // every read waits 10 s at most
                Transcript t = client.send_message(
                    forwarded("carol@slow" + std::to_string(i) + ".example", i));
                if (!t.eom) failures[std::size_t(i)] = "no answer at end of message";
                client.quit();
            } catch (const std::exception& e) {
                failures[std::size_t(i)] = e.what();
            }
        });
    }
    for (auto& t : mtas) t.join();
    int failed = 0;
    for (int i = 0; i < kConnections; ++i) {
        if (!failures[std::size_t(i)].empty() && failed++ < 5)
            ADD_FAILURE() << "connection " << i << ": " << failures[std::size_t(i)];
    }
    EXPECT_EQ(failed, 0) << milter.log();
    EXPECT_GE(dns.queries(), 64);
    unlink(resolv.c_str());
}

// An SPF lookup of 7 s, and an MTA that waits 5 s per read: the end of message is
// still answered, since SMFIR_PROGRESS goes out every 2 s while it waits.
TEST(SpfDns, EndOfMessageWaitingOnALookupSendsProgress) {
    if (auto why = cannot_run(); !why.empty()) GTEST_SKIP() << why;
    SlowDns dns(resolver_address(2), std::chrono::seconds(7));
    ASSERT_TRUE(dns.ok()) << "cannot bind " << dns.address() << ":53: " << dns.error();
    const std::string resolv = "/tmp/backstop-resolv-slow1." + std::to_string(getpid());
    std::ofstream(resolv) << "nameserver " << dns.address() << "\noptions timeout:30 attempts:1\n";
    MilterSettings s = with_resolver(resolv);
    s.args = {"--srs.spf-check",   "true", "--srs.spf-relay-address", "192.0.2.1",
              "--srs.spf-timeout", "30000"};
    MilterProcess milter(s);
    ClientOptions o;
    o.timeout = std::chrono::seconds(5);
    auto client = milter.client(o);
    Transcript t = client.send_message(forwarded("carol@slowest.example", 1));
    ASSERT_TRUE(t.eom.has_value()) << milter.log();
    EXPECT_GE(t.eom->progress, 2) << milter.log();
    EXPECT_TRUE(milter.wait_for_log(" spf=none", std::chrono::seconds(2))) << milter.log();
    client.quit();
    unlink(resolv.c_str());
}

}  // namespace backstop::test
