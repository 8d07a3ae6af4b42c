// The classifier: structure first (delivery-status and feedback-report parts, SES
// JSON), then bounce text, then challenge and auto-reply signs. A DSN often carries
// "Auto-Submitted: auto-replied", so the auto-reply checks come last.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backstop/bounce/classify.hpp"
#include "backstop/bounce/dsn.hpp"
#include "backstop/bounce/mime.hpp"
#include "backstop/bounce/reason.hpp"
#include "backstop/envelope/verp.hpp"
#include "bounce_internal.hpp"
#include "classify_internal.hpp"
#include "mime_text.hpp"

namespace backstop {

using detail::bounce_body;
using detail::bounce_subject;
using detail::clean_address;
using detail::collect;
using detail::detect_mta;
using detail::finish_recipient;
using detail::from_dsn;
using detail::from_system_address;
using detail::inline_original;
using detail::looks_like_address;
using detail::one_line;
using detail::Parts;

namespace {

// An enclosed message that is itself a delivery report (a bounce of a bounce, or a
// relay that wrapped the report it got in its own notice).
bool is_delivery_report(const MimeEntity& e) {
    return e.is("multipart/report") &&
           iequals(e.content_type.param("report-type"), "delivery-status");
}

Classification classify_entity(const MimeEntity& root, const ClassifyOptions& options,
                               bool enclosed);

// The one address a short null-sender notice says does not work, or nothing.
std::optional<BounceRecipient> null_sender_refusal(const HeaderList& h, std::string_view notice,
                                                   const detail::TextScanContext& ctx) {
    bool null_sender =
        text::trim(h.get("Return-Path")) == "<>" || text::trim(h.get("From")) == "<>";
    if (!null_sender || notice.size() > 2048) return std::nullopt;
    std::string reason = bounce_reason("", "", notice, "");
    if (reason != "userunknown" && reason != "filtered") return std::nullopt;
    std::vector<std::string> named;
    for (auto& a : detail::header_addresses(notice)) {
        bool own = std::any_of(ctx.exclude.begin(), ctx.exclude.end(),
                               [&](const std::string& x) { return iequals(x, a); });
        if (own || std::find(named.begin(), named.end(), a) != named.end()) continue;
        named.push_back(std::move(a));
    }
    if (named.size() != 1) return std::nullopt;
    BounceRecipient r;
    r.address = std::move(named.front());
    r.diagnostic = one_line(notice);
    return r;
}

// A 4xx/5xx reply code or status anywhere in the text.
bool quotes_failure_code(std::string_view text) {
    std::string reply = find_reply_code(text);
    std::string status = find_last_status_code(text);
    return (!reply.empty() && reply[0] != '2') || (!status.empty() && status[0] != '2');
}

}  // namespace

Classification BounceClassifier::classify(std::string_view message,
                                          const ClassifyOptions& options) const {
    MimeLimits limits;
    limits.max_bytes = options.max_bytes;
    limits.decode_other_parts = false;
    MimeMessage msg = parse_mime(message, limits);
    Classification out = classify_entity(msg.root, options, false);
    out.truncated = msg.truncated;
    return out;
}

namespace {

// enclosed: root is a message found inside another one (looked into once, not deeper).
Classification classify_entity(const MimeEntity& root, const ClassifyOptions& options,
                               bool enclosed) {
    Classification out;
    const HeaderList& h = root.headers;
    Parts parts;
    collect(root, parts, true);

    // The text parts joined (one part, the usual case, is used as it is).
    std::string joined;
    for (std::size_t i = 0; parts.notice.size() > 1 && i < parts.notice.size(); ++i) {
        if (!joined.empty()) joined.push_back('\n');
        joined.append(parts.notice[i]);
    }
    std::string_view notice =
        parts.notice.size() == 1 ? parts.notice.front() : std::string_view(joined);
    // The inline original (if the notice quotes one) is not part of the notice.
    HeaderList inline_headers;
    std::size_t marker_at = std::string::npos;
    bool has_inline = inline_original(notice, inline_headers, &marker_at);
    std::string_view notice_only = notice.substr(0, has_inline ? marker_at : notice.size());

    std::string subject = decode_header_words(h.get("Subject"));
    detail::TextScanContext ctx;
    for (const auto& a : detail::header_addresses(h.get("To"))) ctx.exclude.push_back(a);
    for (const auto& a : detail::header_addresses(h.get("From"))) ctx.exclude.push_back(a);

    std::string report_type = ascii_lower(root.content_type.param("report-type"));
    bool system_sender = from_system_address(h);

    // 0. Challenge/response systems (Boxbe, TMDA, ...) ask the sender to confirm; some
    // wrap that request in a delivery report with "Action: failed". It is no bounce,
    // whatever its structure says; a mailer-daemon's report never is a challenge.
    if (!system_sender && !enclosed && detail::is_challenge(h, subject, notice_only)) {
        out.kind = MessageKind::challenge;
        return out;
    }

    // 1. Feedback reports (ARF, and Hotmail's "complaint about message" form).
    bool hotmail_complaint =
        parts.original && parts.original->headers.has("X-HmXmrOriginalRecipient");
    if (hotmail_complaint) {
        out.kind = MessageKind::feedback;
        out.mta = "arf";
        for (const auto& a :
             detail::header_addresses(parts.original->headers.get("X-HmXmrOriginalRecipient")))
            out.about.push_back(a);
    }
    if (parts.feedback || report_type == "feedback-report") {
        out.kind = MessageKind::feedback;
        out.mta = "arf";
        if (parts.feedback) {
            HeaderList fr;
            parse_header_block(parts.feedback->body, fr);
            for (const auto& f : fr.fields)
                if (iequals(f.name, "Original-Rcpt-To") || iequals(f.name, "Removal-Recipient"))
                    for (const auto& a : detail::header_addresses(f.value)) out.about.push_back(a);
        }
    }
    // 2. RFC 3464 delivery-status parts. Blocks whose recipient is a pipe, a file or a
    // bare route are kept aside: the text names the address, the block has the status.
    std::vector<BounceRecipient> orphans;
    if (out.kind == MessageKind::none) {
        std::vector<const MimeEntity*> dsn_parts = parts.dsn;
        DsnReport report;
        for (const MimeEntity* p : dsn_parts) {
            DsnReport r = parse_delivery_status(p->body);
            for (auto& x : r.recipients) report.recipients.push_back(std::move(x));
            for (auto& f : r.per_message.fields) report.per_message.fields.push_back(std::move(f));
        }
        // Some MTAs write the fields into a text part instead.
        if (report.empty()) {
            std::size_t fr = text::ifind(notice_only, "\nfinal-recipient:");
            if (fr == std::string_view::npos && istarts_with(notice_only, "final-recipient:"))
                fr = 0;
            if (fr != std::string_view::npos) {
                std::size_t start = notice_only.rfind("\n\n", fr);
                report = parse_delivery_status(
                    notice_only.substr(start == std::string_view::npos ? 0 : start));
            }
        }
        if (!report.empty() || !dsn_parts.empty() || report_type == "delivery-status") {
            out.kind = MessageKind::dsn;
            std::size_t seen = 0;
            for (const auto& f : report.recipients) {
                if (out.recipients.size() >= detail::kMaxRecipients ||
                    ++seen > 4 * detail::kMaxRecipients)
                    break;
                BounceRecipient r =
                    from_dsn(f, notice_only, out.recipients.size() < detail::kMaxTextLookups);
                if (r.address.empty()) {
                    orphans.push_back(std::move(r));
                    continue;
                }
                auto dup = std::find_if(
                    out.recipients.begin(), out.recipients.end(),
                    [&](const BounceRecipient& x) { return iequals(x.address, r.address); });
                if (dup != out.recipients.end()) continue;
                out.recipients.push_back(std::move(r));
            }
        }
    }
    // 3. Amazon SES JSON.
    if (out.kind == MessageKind::none &&
        notice_only.find("notificationType") != std::string_view::npos)
        detail::parse_ses_json(notice_only, out);

    // 4. Vendor text.
    bool looks_bounce = system_sender || bounce_subject(subject) || h.has("X-Failed-Recipients") ||
                        ((has_inline || parts.original) && bounce_body(notice_only));
    if (out.kind == MessageKind::none || (out.kind == MessageKind::dsn && out.recipients.empty())) {
        std::vector<detail::TextRecipient> found;
        if (looks_bounce) found = detail::scan_text_recipients(notice_only, ctx);
        // X-Failed-Recipients is the MTA's own list: it wins over text that names only
        // the bounce's own addresses.
        auto failed_header = detail::header_addresses(h.get("X-Failed-Recipients"));
        if (!failed_header.empty() && !found.empty()) {
            bool overlap =
                std::any_of(found.begin(), found.end(), [&](const detail::TextRecipient& t) {
                    return std::any_of(failed_header.begin(), failed_header.end(),
                                       [&](const std::string& a) { return iequals(a, t.address); });
                });
            // ... when what the text named is only the bounce's own To or From.
            bool only_own =
                std::all_of(found.begin(), found.end(), [&](const detail::TextRecipient& t) {
                    return std::any_of(ctx.exclude.begin(), ctx.exclude.end(),
                                       [&](const std::string& a) { return iequals(a, t.address); });
                });
            if (!overlap && only_own) found.clear();
        }
        if (found.empty() && looks_bounce) {
            for (const auto& a : detail::header_addresses(h.get("X-Failed-Recipients"))) {
                if (found.size() >= detail::kMaxRecipients) break;
                found.push_back({a, found.size() < detail::kMaxTextLookups
                                        ? detail::text_near_address(notice_only, a)
                                        : std::string()});
            }
        }
        // A notice that names no recipient but encloses a delivery report: that report
        // is the bounce (its recipients, reasons and returned original).
        if (found.empty() && looks_bounce && !enclosed && parts.original &&
            is_delivery_report(*parts.original)) {
            // The envelope recipient belongs to this message: VERP applies to it
            // below, never to the enclosed report (it must not make a bounce of one).
            ClassifyOptions inner_options = options;
            inner_options.envelope_recipient.clear();
            Classification inner = classify_entity(*parts.original, inner_options, true);
            if (inner.kind == MessageKind::dsn && !inner.recipients.empty()) return inner;
        }
        if (found.empty() && looks_bounce && (has_inline || parts.original) &&
            (bounce_subject(subject) || h.has("X-Failed-Recipients"))) {
            // Nothing names the recipient: the original's To, when it has just one.
            const HeaderList& oh = parts.original ? parts.original->headers : inline_headers;
            auto to = detail::header_addresses(oh.get("To"));
            if (to.size() == 1) found.push_back({to.front(), ""});
        }
        // Only the subject says "bounce" (no daemon sender, no failed-recipients header,
        // no returned message): spam and phishing dress up so. A real notice then still
        // quotes a server's failure, a reply or status code.
        bool subject_only = !system_sender && !h.has("X-Failed-Recipients") && !has_inline &&
                            !parts.original && orphans.empty() && out.kind == MessageKind::none;
        if (subject_only && !found.empty() && !quotes_failure_code(notice_only)) found.clear();
        if (!found.empty()) {
            out.kind = MessageKind::dsn;
            for (auto& t : found) {
                BounceRecipient r;
                r.address = std::move(t.address);
                r.diagnostic = std::move(t.diagnostic);
                if (found.size() == 1 && orphans.size() == 1) {
                    r.status = orphans.front().status;
                    r.action = orphans.front().action;
                    if (r.diagnostic.empty()) r.diagnostic = orphans.front().diagnostic;
                }
                out.recipients.push_back(std::move(r));
            }
        } else if (out.kind == MessageKind::none && system_sender && bounce_subject(subject)) {
            out.kind = MessageKind::dsn;  // a bounce we cannot read: still a bounce
        }
    }
    // Mailing-list managers that refuse a post: the list is the recipient that failed.
    if (out.kind == MessageKind::none && detail::list_refusal(h, notice_only, out)) out.mta = "fml";
    // Google Groups refusals are worded in the poster's language; the reference
    // calls them all "rejected".
    bool google_groups = out.kind == MessageKind::dsn && text::icontains(h.get("From"), "google") &&
                         text::icontains(notice_only, "groups.google.com");
    if (google_groups) {
        out.mta = "googlegroups";
        for (auto& r : out.recipients) r.reason = "rejected";
    }
    std::string fallback = one_line(notice_only, 4000);
    for (std::size_t i = 0; i < out.recipients.size(); ++i) {
        BounceRecipient& r = out.recipients[i];
        std::string command = smtp_command_of(r.diagnostic);
        if (command.empty() && i < detail::kMaxTextLookups)
            command = smtp_command_of(detail::text_near_address(notice_only, r.address));
        if (command.empty() && out.recipients.size() == 1) command = smtp_command_of(fallback);
        finish_recipient(r, fallback, command, out.recipients.size() == 1);
    }
    // A relay's notice that names the recipient but no reason, around a message that is
    // itself a bounce text (InterScan returns the bounce it could not pass on): the
    // reason is in that text.
    if (!enclosed && parts.original && !parts.original->headers_only &&
        std::any_of(out.recipients.begin(), out.recipients.end(), [](const BounceRecipient& r) {
            return r.reason == "undefined" && r.status.empty() && r.reply_code.empty();
        })) {
        Parts inner;
        collect(*parts.original, inner, true);
        std::string inner_text;
        for (const auto& t : inner.notice) inner_text.append(t).push_back('\n');
        if (detail::reads_like_bounce_report(inner_text)) {
            for (std::size_t i = 0; i < out.recipients.size() && i < detail::kMaxTextLookups; ++i) {
                BounceRecipient& r = out.recipients[i];
                if (r.reason != "undefined" || !r.status.empty() || !r.reply_code.empty()) continue;
                std::string near = detail::text_near_address(inner_text, r.address);
                if (near.empty()) continue;
                r.diagnostic = near;
                r.reason.clear();
                finish_recipient(r, "", smtp_command_of(near), false);
            }
        }
    }

    // 5. A short refusal sent with the null sender ("You sent mail to a@b. That's not a
    // valid user here."): an auto-responder used to bounce, so it may say
    // Auto-Submitted, but its words are about an address that does not work.
    if (out.kind == MessageKind::none && !system_sender && !enclosed) {
        if (auto r = null_sender_refusal(h, notice_only, ctx)) {
            out.kind = MessageKind::dsn;
            finish_recipient(*r, "", "", true);
            out.recipients.push_back(std::move(*r));
        }
    }
    // 6. Auto-replies.
    if (out.kind == MessageKind::none && !system_sender) {
        if (detail::is_autoreply(h, subject, notice_only)) {
            out.kind = MessageKind::autoreply;
            for (const auto& a : detail::header_addresses(h.get("From"))) out.about.push_back(a);
        }
    }
    if (out.mta.empty() && out.kind == MessageKind::dsn)
        out.mta = detect_mta(h, notice, !parts.dsn.empty());
    if (out.kind == MessageKind::autoreply) out.mta = "rfc3834";

    // VERP: our return path names the recipient; it stands in when the bounce names none.
    if (out.kind != MessageKind::none && !options.envelope_recipient.empty()) {
        auto decoded = verp_decode(options.envelope_recipient);
        if (!decoded.ok())
            decoded = verp_decode(options.envelope_recipient, VerpDelimiters{'-', '='});
        if (decoded.ok() && looks_like_address(decoded.value()))
            out.verp_recipient = clean_address(decoded.value());
        if (!out.verp_recipient.empty() && out.kind == MessageKind::dsn && out.recipients.empty()) {
            BounceRecipient r;
            r.address = out.verp_recipient;
            finish_recipient(r, fallback, "", true);
            out.recipients.push_back(std::move(r));
        }
    }

    // The returned original.
    std::string header_name =
        options.watermark ? options.watermark->header_name() : "X-Backstop-Watermark";
    if (out.kind != MessageKind::none) {
        if (parts.original && !parts.original->headers.fields.empty())
            detail::describe_original(parts.original->headers, header_name, out.original);
        else if (has_inline)
            detail::describe_original(inline_headers, header_name, out.original);
        if (out.kind == MessageKind::feedback && out.about.empty() && out.original.present)
            out.about = detail::header_addresses(out.original.to);
    }
    if (out.original.present) {
        WatermarkInput& w = out.original.watermark_found;
        if (w.envelope_sender.empty()) {
            // Returned originals rarely keep Return-Path: the bounce went to the sender.
            if (!options.envelope_recipient.empty())
                w.envelope_sender = clean_address(options.envelope_recipient);
            else if (auto to = detail::header_addresses(h.get("To")); !to.empty())
                w.envelope_sender = to.front();
        }
        if (options.watermark) {
            out.original.watermark = options.watermark->check(w, options.now);
        }
    }
    return out;
}

}  // namespace

}  // namespace backstop
