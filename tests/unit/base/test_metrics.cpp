#include "backstop/base/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

using namespace backstop;

TEST(Metrics, PrometheusText) {
    Metrics m;
    m.add(Counter::messages_inbound, 3);
    m.add(Counter::rejected_bad_signature);
    m.observe_latency_us(40);
    m.observe_latency_us(700);
    m.observe_latency_us(1000000);
    std::string t = m.prometheus();
    EXPECT_NE(t.find("# TYPE backstop_messages_total counter\n"), std::string::npos);
    EXPECT_NE(t.find("backstop_messages_total{direction=\"inbound\"} 3\n"), std::string::npos) << t;
    EXPECT_NE(t.find("backstop_messages_total{direction=\"outbound\"} 0\n"), std::string::npos);
    EXPECT_NE(t.find("backstop_refused_total{reason=\"bad-signature\"} 1\n"), std::string::npos);
    EXPECT_NE(t.find("backstop_eom_latency_seconds_bucket{le=\"5e-05\"} 1\n"), std::string::npos)
        << t;
    EXPECT_NE(t.find("backstop_eom_latency_seconds_bucket{le=\"0.001\"} 2\n"), std::string::npos);
    EXPECT_NE(t.find("backstop_eom_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
    EXPECT_NE(t.find("backstop_eom_latency_seconds_count 3\n"), std::string::npos);
}

TEST(Metrics, SocketmapLookupsByMapAndResult) {
    Metrics m;
    m.add(Counter::socketmap_forward_ok, 2);
    m.add(Counter::socketmap_reverse_notfound);
    std::string t = m.prometheus();
    EXPECT_NE(t.find("# TYPE backstop_socketmap_lookups_total counter\n"), std::string::npos);
    EXPECT_NE(t.find("backstop_socketmap_lookups_total{map=\"forward\",result=\"ok\"} 2\n"),
              std::string::npos)
        << t;
    EXPECT_NE(t.find("backstop_socketmap_lookups_total{map=\"reverse\",result=\"notfound\"} 1\n"),
              std::string::npos);
    EXPECT_NE(t.find("backstop_socketmap_connections_refused_total 0\n"), std::string::npos);
    EXPECT_NE(t.find("backstop_milter_progress_total 0\n"), std::string::npos);
}

TEST(Metrics, ConcurrentIncrements) {
    Metrics m;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) m.add(Counter::batv_signed);
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(m.get(Counter::batv_signed), 80000u);
}
