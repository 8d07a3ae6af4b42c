// milter_load: drives a running milter over its socket with N concurrent
// connections, each running full transactions back to back, and prints
// transactions/s, per-callback latency percentiles and the milter's RSS.
//   milter_load HOST PORT CONNECTIONS SECONDS [MILTER_PID] [outbound|bounce|mixed]
// The transactions are those a relay and an MX see most: a local sender signed
// with BATV (outbound), and null-sender bounces to unsigned addresses (refused at
// RCPT) and to valid tags (accepted, rewritten) when the client is external.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../tests/protocol/milter_client.hpp"

using namespace backstop::test;
using Clock = std::chrono::steady_clock;

namespace {

long rss_kib(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    while (in >> key) {
        if (key == "VmRSS:") {
            long v = 0;
            in >> v;
            return v;
        }
        std::string rest;
        std::getline(in, rest);
    }
    return -1;
}

struct Stats {
    std::vector<double> callback_us;  // one entry per request/reply round trip
    long transactions = 0;
    long errors = 0;
};

Message make_message(const std::string& mode, long n, const std::string& valid_tag) {
    Message m;
    m.queue_id = "Q" + std::to_string(n);
    m.headers = {{"From", "Alice <alice@ours.example>"},
                 {"To", "bob@remote.example"},
                 {"Subject", "load test " + std::to_string(n)},
                 {"Message-ID", "<" + std::to_string(n) + "@client.example>"}};
    m.body = std::string(4000, 'x') + "\r\n";
    bool bounce = mode == "bounce" || (mode == "mixed" && n % 2 == 1);
    if (!bounce) {
        m.client_addr = "127.0.0.1";
        m.sender = "<alice@ours.example>";
        m.mail_args = {m.sender};
        m.recipients = {"<bob@remote.example>"};
    } else {
        m.client_addr = "198.51.100.7";
        m.sender = "<>";
        m.mail_args = {"<>"};
        // Half the storm is refused at RCPT, half reaches EOM with a rewrite.
        m.recipients = {n % 4 < 2 ? "<alice@ours.example>" : "<" + valid_tag + ">"};
    }
    return m;
}

void worker(const std::string& host, std::uint16_t port, const std::string& mode,
            const std::string& tag, Clock::time_point until, Stats& out,
            std::atomic<long>& counter) {
    try {
        ClientOptions o;
        o.timeout = std::chrono::milliseconds(30000);
        auto c = MilterClient::connect_tcp(host, port, o);
        c.negotiate();
        bool first = true;
        while (Clock::now() < until) {
            long n = counter++;
            Message m = make_message(mode, n, tag);
            auto t0 = Clock::now();
            Transcript t = c.send_message(m, first);
            auto t1 = Clock::now();
            first = false;
            // Steps answered: connect (first only), helo, mail, rcpts, data, headers, eoh, body,
            // eom.
            std::size_t steps =
                4 + t.rcpts.size() + t.headers.size() + t.body.size() + (t.eom ? 1 : 0);
            double per = std::chrono::duration<double, std::micro>(t1 - t0).count() / double(steps);
            for (std::size_t i = 0; i < steps; ++i) out.callback_us.push_back(per);
            ++out.transactions;
            if (!t.eom) c.abort();
        }
        c.quit();
    } catch (const std::exception& e) {
        ++out.errors;
        std::fprintf(stderr, "milter_load: %s\n", e.what());
    }
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    std::size_t k = std::min(v.size() - 1, std::size_t(p * double(v.size())));
    std::nth_element(v.begin(), v.begin() + long(k), v.end());
    return v[k];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr,
                     "usage: milter_load HOST PORT CONNECTIONS SECONDS [MILTER_PID] "
                     "[outbound|bounce|mixed] [VALID_TAG]\n");
        return 2;
    }
    std::string host = argv[1];
    auto port = std::uint16_t(std::atoi(argv[2]));
    int conns = std::atoi(argv[3]);
    double seconds = std::atof(argv[4]);
    int pid = argc > 5 ? std::atoi(argv[5]) : 0;
    std::string mode = argc > 6 ? argv[6] : "outbound";
    std::string tag = argc > 7 ? argv[7] : "prvs=0000000000=alice@ours.example";

    std::vector<Stats> stats(static_cast<std::size_t>(conns));
    std::vector<std::thread> threads;
    std::atomic<long> counter{0};
    auto start = Clock::now();
    auto until =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (int i = 0; i < conns; ++i) {
        threads.emplace_back(worker, host, port, mode, tag, until, std::ref(stats[std::size_t(i)]),
                             std::ref(counter));
    }
    // RSS while every connection is open and busy.
    long rss = -1;
    if (pid > 0) {
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds / 2));
        rss = rss_kib(pid);
    }
    for (auto& t : threads) t.join();
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

    Stats all;
    for (auto& s : stats) {
        all.transactions += s.transactions;
        all.errors += s.errors;
        all.callback_us.insert(all.callback_us.end(), s.callback_us.begin(), s.callback_us.end());
    }
    double p50 = percentile(all.callback_us, 0.50), p99 = percentile(all.callback_us, 0.99);
    std::printf(
        "connections=%d mode=%s transactions=%ld errors=%ld tps=%.0f callback_p50_us=%.1f "
        "callback_p99_us=%.1f",
        conns, mode.c_str(), all.transactions, all.errors, double(all.transactions) / elapsed, p50,
        p99);
    if (rss >= 0) std::printf(" milter_rss_mib=%.1f", double(rss) / 1024.0);
    std::printf("\n");
    return all.errors == 0 ? 0 : 1;
}
