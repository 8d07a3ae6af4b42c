#include "backstop/base/metrics.hpp"

#include <cstdio>

namespace backstop {

namespace {

struct Family {
    const char* name;
    const char* help;
    const char* label;  // "" for a plain counter, or when the exposures name their labels
};

// How each counter is exposed: family name, label value (or, in a family without a
// label name, the whole label set: map="forward",result="ok").
struct Exposure {
    Counter counter;
    const char* family;
    const char* label_value;
};

constexpr Family kFamilies[] = {
    {"backstop_messages_total", "Messages seen at end of message, by direction.", "direction"},
    {"backstop_batv_signed_total", "Outbound senders tagged with BATV.", ""},
    {"backstop_srs_rewritten_total", "Outbound senders rewritten with SRS.", ""},
    {"backstop_srs_aliases_written_total",
     "Forwarded senders stored as SRS aliases in the state store (original-envelope).", ""},
    {"backstop_srs_too_long_total",
     "Forwarded senders too long to embed in SRS that went out unchanged (embedded).", ""},
    {"backstop_recipients_reversed_total", "Recipients with a valid BATV/SRS tag rewritten back.",
     ""},
    {"backstop_refused_total", "Recipients or messages refused (reject or tempfail), by reason.",
     "reason"},
    {"backstop_tagged_total", "Messages given an X-Backstop-Result header.", ""},
    {"backstop_discarded_total", "Recipients or messages discarded by configuration.", ""},
    {"backstop_classified_total", "Inbound messages classified, by kind.", "kind"},
    {"backstop_watermark_total", "Watermark checks of returned originals, by result.", "result"},
    {"backstop_hard_bounces_recorded_total",
     "Hard bounces of our mail recorded in the state store.", ""},
    {"backstop_errors_total", "Internal errors answered with a temporary failure.", ""},
    {"backstop_socketmap_lookups_total", "Socketmap lookups, by map and answer.", ""},
    {"backstop_socketmap_bad_requests_total",
     "Socketmap connections closed for a malformed or oversized request.", ""},
    {"backstop_socketmap_connections_refused_total",
     "Socketmap connections closed at once beyond socketmap-max-connections.", ""},
    {"backstop_milter_progress_total",
     "Progress packets sent to the MTA while an end of message waited on a lookup.", ""},
};

constexpr Exposure kExposures[] = {
    {Counter::messages_inbound, "backstop_messages_total", "inbound"},
    {Counter::messages_outbound, "backstop_messages_total", "outbound"},
    {Counter::batv_signed, "backstop_batv_signed_total", ""},
    {Counter::srs_rewritten, "backstop_srs_rewritten_total", ""},
    {Counter::srs_aliases_written, "backstop_srs_aliases_written_total", ""},
    {Counter::srs_too_long, "backstop_srs_too_long_total", ""},
    {Counter::recipients_reversed, "backstop_recipients_reversed_total", ""},
    {Counter::rejected_unsigned_bounce, "backstop_refused_total", "unsigned-bounce"},
    {Counter::rejected_bad_signature, "backstop_refused_total", "bad-signature"},
    {Counter::rejected_localpart, "backstop_refused_total", "localpart"},
    {Counter::rejected_storm, "backstop_refused_total", "bounce-storm"},
    {Counter::rejected_replay, "backstop_refused_total", "bounce-replay"},
    {Counter::suppressed, "backstop_refused_total", "suppressed"},
    {Counter::rejected_unknown_recipient, "backstop_refused_total", "unknown-recipient"},
    {Counter::hard_bounces_recorded, "backstop_hard_bounces_recorded_total", ""},
    {Counter::rejected_autoreply, "backstop_refused_total", "unsigned-autoreply"},
    {Counter::tagged, "backstop_tagged_total", ""},
    {Counter::discarded, "backstop_discarded_total", ""},
    {Counter::classified_dsn, "backstop_classified_total", "dsn"},
    {Counter::classified_autoreply, "backstop_classified_total", "autoreply"},
    {Counter::classified_challenge, "backstop_classified_total", "challenge"},
    {Counter::classified_feedback, "backstop_classified_total", "feedback"},
    {Counter::classified_none, "backstop_classified_total", "none"},
    {Counter::watermark_valid, "backstop_watermark_total", "valid"},
    {Counter::watermark_invalid, "backstop_watermark_total", "invalid"},
    {Counter::watermark_expired, "backstop_watermark_total", "expired"},
    {Counter::watermark_absent, "backstop_watermark_total", "absent"},
    {Counter::errors, "backstop_errors_total", ""},
    {Counter::socketmap_forward_ok, "backstop_socketmap_lookups_total",
     "map=\"forward\",result=\"ok\""},
    {Counter::socketmap_forward_notfound, "backstop_socketmap_lookups_total",
     "map=\"forward\",result=\"notfound\""},
    {Counter::socketmap_forward_temp, "backstop_socketmap_lookups_total",
     "map=\"forward\",result=\"temp\""},
    {Counter::socketmap_reverse_ok, "backstop_socketmap_lookups_total",
     "map=\"reverse\",result=\"ok\""},
    {Counter::socketmap_reverse_notfound, "backstop_socketmap_lookups_total",
     "map=\"reverse\",result=\"notfound\""},
    {Counter::socketmap_reverse_temp, "backstop_socketmap_lookups_total",
     "map=\"reverse\",result=\"temp\""},
    {Counter::socketmap_perm, "backstop_socketmap_lookups_total", "map=\"other\",result=\"perm\""},
    {Counter::socketmap_bad_request, "backstop_socketmap_bad_requests_total", ""},
    {Counter::socketmap_connections_refused, "backstop_socketmap_connections_refused_total", ""},
    {Counter::milter_progress, "backstop_milter_progress_total", ""},
};

}  // namespace

void Metrics::observe_latency_us(std::uint64_t us) {
    std::size_t i = 0;
    while (i < kBucketsUs.size() && us > kBucketsUs[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    latency_sum_us_.fetch_add(us, std::memory_order_relaxed);
    latency_count_.fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::prometheus() const {
    std::string out;
    char line[256];
    for (const Family& f : kFamilies) {
        out += std::string("# HELP ") + f.name + " " + f.help + "\n# TYPE " + f.name + " counter\n";
        for (const Exposure& e : kExposures) {
            if (std::string_view(e.family) != f.name) continue;
            if (*f.label) {
                std::snprintf(line, sizeof line, "%s{%s=\"%s\"} %llu\n", f.name, f.label,
                              e.label_value, static_cast<unsigned long long>(get(e.counter)));
            } else if (*e.label_value) {
                std::snprintf(line, sizeof line, "%s{%s} %llu\n", f.name, e.label_value,
                              static_cast<unsigned long long>(get(e.counter)));
            } else {
                std::snprintf(line, sizeof line, "%s %llu\n", f.name,
                              static_cast<unsigned long long>(get(e.counter)));
            }
            out += line;
        }
    }
    const char* h = "backstop_eom_latency_seconds";
    out += std::string("# HELP ") + h + " Time spent deciding at end of message.\n# TYPE " + h +
           " histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBucketsUs.size(); ++i) {
        cumulative += buckets_[i].load(std::memory_order_relaxed);
        std::snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %llu\n", h,
                      double(kBucketsUs[i]) / 1e6, static_cast<unsigned long long>(cumulative));
        out += line;
    }
    cumulative += buckets_.back().load(std::memory_order_relaxed);
    std::snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %g\n%s_count %llu\n", h,
                  static_cast<unsigned long long>(cumulative), h,
                  double(latency_sum_us_.load()) / 1e6, h,
                  static_cast<unsigned long long>(latency_count_.load()));
    out += line;
    return out;
}

}  // namespace backstop
