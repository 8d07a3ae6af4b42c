// Metrics: counters and a latency histogram shared by every connection, exposed in
// the Prometheus text format. Lock-free increments; one instance per daemon.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace backstop {

enum class Counter : std::size_t {
    messages_inbound,
    messages_outbound,
    batv_signed,
    srs_rewritten,
    srs_aliases_written,  // long senders stored as postsrsd 2 aliases (original-envelope)
    srs_too_long,         // forwarded senders too long to embed that went out unchanged
    recipients_reversed,  // valid BATV/SRS recipient rewritten back
    rejected_unsigned_bounce,
    rejected_bad_signature,
    rejected_localpart,
    rejected_storm,
    rejected_replay,             // a signed address brought back more bounces than replay-limit
    suppressed,                  // outbound recipients refused after repeated hard bounces
    rejected_unknown_recipient,  // inbound recipients refused after refuse-unknown-after
    hard_bounces_recorded,
    rejected_autoreply,
    tagged,
    discarded,
    classified_dsn,
    classified_autoreply,
    classified_challenge,
    classified_feedback,
    classified_none,
    watermark_valid,
    watermark_invalid,
    watermark_expired,
    watermark_absent,
    errors,  // internal errors answered with a tempfail
    socketmap_forward_ok,
    socketmap_forward_notfound,
    socketmap_forward_temp,
    socketmap_reverse_ok,
    socketmap_reverse_notfound,
    socketmap_reverse_temp,
    socketmap_perm,                 // unknown map or a request that is not NAME KEY
    socketmap_bad_request,          // malformed or oversized netstring: connection closed
    socketmap_connections_refused,  // beyond socketmap-max-connections
    milter_progress,                // SMFIR_PROGRESS sent while an end of message waited
    count_                          // number of counters
};

class Metrics {
  public:
    // Upper bounds of the end-of-message latency buckets, in microseconds.
    static constexpr std::array<std::uint64_t, 10> kBucketsUs = {50,   100,  250,   500,   1000,
                                                                 2500, 5000, 10000, 50000, 250000};

    void add(Counter c, std::uint64_t n = 1) {
        counters_[std::size_t(c)].fetch_add(n, std::memory_order_relaxed);
    }
    std::uint64_t get(Counter c) const {
        return counters_[std::size_t(c)].load(std::memory_order_relaxed);
    }
    void observe_latency_us(std::uint64_t us);

    // Prometheus text exposition format (version 0.0.4).
    std::string prometheus() const;

  private:
    std::array<std::atomic<std::uint64_t>, std::size_t(Counter::count_)> counters_{};
    std::array<std::atomic<std::uint64_t>, kBucketsUs.size() + 1> buckets_{};  // last: +Inf
    std::atomic<std::uint64_t> latency_sum_us_{0};
    std::atomic<std::uint64_t> latency_count_{0};
};

}  // namespace backstop
