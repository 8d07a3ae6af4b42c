// The metrics endpoint of the real daemon: stats-socket serves Prometheus text over
// HTTP GET /metrics, and `backstop-milter --stats` prints the same counters.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "milter_client.hpp"
#include "milter_process.hpp"

namespace backstop::test {
namespace {

// One HTTP exchange on loopback: the whole response, or "" when nobody answers.
std::string http(std::uint16_t port, const std::string& request) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return "";
    }
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::size_t sent = 0;
    while (sent < request.size()) {
        ssize_t n = write(fd, request.data() + sent, request.size() - sent);
        if (n <= 0) break;
        sent += std::size_t(n);
    }
    std::string response;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) response.append(buf, std::size_t(n));
    close(fd);
    return response;
}

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
}

Message outbound_message() {
    Message m;
    m.client_addr = "127.0.0.1";  // internal: outbound
    m.sender = "<alice@ours.example>";
    m.recipients = {"<bob@remote.example>"};
    m.headers = {{"From", "alice@ours.example"}, {"Subject", "hi"}};
    return m;
}

Message unsigned_bounce() {
    Message m;
    m.client_addr = "192.0.2.25";  // external: inbound
    m.client_host = "mx.remote.example";
    m.sender = "<>";
    m.recipients = {"<carol@ours.example>"};
    m.headers = {{"From", "MAILER-DAEMON@mx.remote.example"}, {"Subject", "Undelivered"}};
    return m;
}

// The endpoint's first answer (the daemon may still be starting), or "".
std::string first_answer(std::uint16_t port) {
    std::string r;
    for (int i = 0; i < 50 && r.empty(); ++i) {
        r = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
        if (r.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r;
}

// One outbound message (signed) and one unsigned bounce (refused), each on its own
// connection: what the counters below count.
void send_outbound_and_bounce(MilterProcess& milter) {
    try {
        auto client = milter.client();
        Transcript out = client.send_message(outbound_message());
        ASSERT_TRUE(out.eom.has_value());
        ASSERT_TRUE(out.eom->new_sender.has_value());
        client.quit();
        auto second = milter.client();
        Transcript in = second.send_message(unsigned_bounce());
        ASSERT_EQ(in.rcpts.size(), 1u);
        EXPECT_TRUE(in.rcpts[0].is_reject());
        second.quit();
    } catch (const std::exception& e) {
        FAIL() << e.what() << "\n" << milter.log();
    }
}

}  // namespace

TEST(Stats, PrometheusOverHttpAndStatsCommand) {
    const std::uint16_t stats_port = free_port();
    MilterSettings s;
    s.args = {"--stats-socket", "inet:" + std::to_string(stats_port) + "@127.0.0.1"};
    MilterProcess milter(s);

    std::string before = first_answer(stats_port);
    ASSERT_FALSE(before.empty()) << "nothing answers on stats-socket port " << stats_port << "\n"
                                 << milter.log();
    EXPECT_TRUE(has_line(before, "backstop_messages_total{direction=\"outbound\"} 0")) << before;

    send_outbound_and_bounce(milter);
    if (::testing::Test::HasFatalFailure()) return;

    std::string r = http(stats_port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_EQ(r.rfind("HTTP/1.0 200", 0), 0u) << r;
    EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r;
    EXPECT_TRUE(has_line(r, "# TYPE backstop_messages_total counter")) << r;
    EXPECT_TRUE(has_line(r, "backstop_messages_total{direction=\"outbound\"} 1")) << r;
    EXPECT_TRUE(has_line(r, "backstop_batv_signed_total 1")) << r;
    EXPECT_TRUE(has_line(r, "backstop_refused_total{reason=\"unsigned-bounce\"} 1")) << r;
    EXPECT_TRUE(has_line(r, "backstop_eom_latency_seconds_count 1")) << r;
    EXPECT_TRUE(has_line(r, "backstop_eom_latency_seconds_bucket{le=\"+Inf\"} 1")) << r;

    std::string missing = http(stats_port, "GET /other HTTP/1.0\r\n\r\n");
    EXPECT_EQ(missing.rfind("HTTP/1.0 404", 0), 0u) << missing;

    // The operator's view: the same numbers through --stats.
    auto stats = run_command({BACKSTOP_MILTER, "--config", milter.config_path(), "--stats-socket",
                              "inet:" + std::to_string(stats_port) + "@127.0.0.1", "--stats"});
    EXPECT_EQ(stats.status, 0) << stats.output;
    EXPECT_TRUE(has_line("\n" + stats.output, "backstop_batv_signed_total 1")) << stats.output;
    EXPECT_EQ(stats.output.find("HTTP/"), std::string::npos) << stats.output;
}

// Whoever can reach the stats endpoint can hold it (one request at a time, two
// seconds each) but never the mail, and learns counts, never an address.
TEST(Stats, HeldEndpointNeverDelaysMailAndShowsNoAddresses) {
    const std::uint16_t stats_port = free_port();
    MilterSettings s;
    s.args = {"--stats-socket", "inet:" + std::to_string(stats_port) + "@127.0.0.1"};
    MilterProcess milter(s);
    ASSERT_FALSE(first_answer(stats_port).empty()) << milter.log();

    // Twenty connections that never send a request.
    std::vector<int> held;
    for (int i = 0; i < 20; ++i) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(stats_port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        held.push_back(fd);
    }
    send_outbound_and_bounce(milter);
    for (int fd : held) close(fd);
    if (::testing::Test::HasFatalFailure()) return;

    std::string r;
    for (int i = 0; i < 100 && r.rfind("HTTP/1.0 200", 0) != 0; ++i) {
        r = http(stats_port, "GET /metrics HTTP/1.0\r\n\r\n");
        if (r.rfind("HTTP/1.0 200", 0) != 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(r.rfind("HTTP/1.0 200", 0), 0u) << r;
    EXPECT_TRUE(has_line(r, "backstop_messages_total{direction=\"outbound\"} 1")) << r;
    for (const char* secret : {"alice", "carol", "ours.example", "remote.example", "192.0.2.25"})
        EXPECT_EQ(r.find(secret), std::string::npos) << secret << " in\n" << r;
}

}  // namespace backstop::test
