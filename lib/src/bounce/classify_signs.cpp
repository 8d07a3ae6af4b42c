// Signs that a message is a bounce when structure does not say so: who sent it, its
// subject, its wording; and the vendor name reported as "mta".
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "bounce_internal.hpp"
#include "classify_internal.hpp"
#include "mime_text.hpp"
#include "phrase_set.hpp"

namespace backstop::detail {

namespace {

std::string local_part_lower(std::string_view address) {
    return ascii_lower(address.substr(0, address.rfind('@')));
}

}  // namespace

bool from_system_address(const HeaderList& h) {
    std::string_view from = h.get("From");
    auto addrs = detail::header_addresses(from);
    std::string local = addrs.empty() ? ascii_lower(from) : local_part_lower(addrs.front());
    return local.find("mailer-daemon") != std::string::npos ||
           local.find("postmaster") != std::string::npos ||
           local.find("mail delivery") != std::string::npos || local == "mailer_daemon" ||
           local.find("mdaemon") != std::string::npos || local == "mail-daemon" ||
           text::icontains(from, "mail delivery") || text::icontains(from, "mailer-daemon") ||
           local == "bounce" || local == "bounces" || local == "mailerdaemon" ||
           local == "mail.delivery.system" || local.find("nobody") != std::string::npos ||
           local == "postoffice" || local == "post_master" || local == "mail-router" ||
           local == "mmdf" || local == "noreply-dmarc-support";
}

namespace {
constexpr std::string_view kBounceSubjects[] = {
    "undeliver",
    "delivery status notification",
    "failure notice",
    "returned mail",
    "mail delivery failed",
    "delivery failure",
    "mail system error",
    "undelivered mail",
    "non remis",
    "delivery notification",
    "could not send message",
    "mail could not be delivered",
    "delivery has failed",
    "message not delivered",
    "nondeliverable",
    "non-deliverable",
    "returned to sender",
    "delivery problem",
    "failed delivery",
    "message delivery failure",
    "mail failure",
    "rejected:",
    "delivery final failure",
    "nicht zustellbar",
    "unzustellbar",
    "permanent error",
    "warning: message",
    "delayed mail",
    "delivery delayed",
    "delivery report",
    "mail status report",
    "message status",
    "error sending message",
    "notice of delivery failure",
    "notificacion",
    "returned message",
    "cannot deliver",
    "delivery failed",
    "user unknown",
    "メールエラー",
    "エラー通知",
    "配信エラー",
    "不達",
    "未達",
    "送信エラー",
};

}  // namespace

bool bounce_subject(std::string_view subject) {
    std::string s = ascii_lower(subject);
    for (std::string_view b : kBounceSubjects)
        if (s.find(b) != std::string::npos) return true;
    return false;
}

// Phrases of delivery-failure notices, for senders that use neither a daemon address
// nor a telling subject. Only used together with a returned original.
bool bounce_body(std::string_view notice) {
    static constexpr std::string_view kPhrases[] = {
        "could not be delivered to", "could not deliver", "undeliverable",
        "delivery failed",           "was not delivered", "permanent error",
        "delivery has failed",       "unable to deliver",
    };
    std::string_view head = notice.substr(0, std::min<std::size_t>(notice.size(), 4096));
    for (std::string_view p : kPhrases)
        if (text::icontains(head, p)) return true;
    return false;
}

bool reads_like_bounce_report(std::string_view text) {
    static constexpr std::string_view kPhrases[] = {
        "following addresses had permanent", "transcript of session follows",
        "transcript of the session follows", "following recipients failed permanently",
        "the following address(es) failed"};
    std::string_view head = text.substr(0, std::min<std::size_t>(text.size(), 4096));
    for (std::string_view p : kPhrases)
        if (text::icontains(head, p)) return true;
    return false;
}

// Vendor name from tell-tale phrases; informational only.
std::string detect_mta(const HeaderList& h, std::string_view notice, bool has_dsn) {
    struct Sign {
        std::string_view phrase;
        std::string_view mta;
    };
    static constexpr Sign kSigns[] = {
        {"this is the mail system at host", "postfix"},
        {"this is the qmail-send program", "qmail"},
        {"this message was created automatically by mail delivery software", "exim"},
        {"dragonfly mail agent", "dragonfly"},
        {"----- transcript of session follows -----", "sendmail"},
        {"delivery to the following recipient", "gmail"},
        {"google tried to deliver your message", "gmail"},
        {"sorry, we were unable to deliver your message", "yahoo"},
        {"microsoft exchange", "exchange"},
        {"delivery has failed to these recipients", "exchange"},
        {"your message couldn't be delivered", "office365"},
        {"opensmtpd", "opensmtpd"},
        {"amazon ses", "amazonses"},
        {"courier mail server", "courier"},
        {"lotus domino", "domino"},
        {"this report relates to a message you sent", "rfc3464"},
    };
    // All signs in one pass; the first in the list that appears wins.
    static const PhraseSet signs = [] {
        PhraseSet set;
        int id = 0;
        for (const auto& s : kSigns) set.add(id++, s.phrase);
        set.build();
        return set;
    }();
    if (int sign = signs.best(notice.substr(0, std::min<std::size_t>(notice.size(), 8192)));
        sign >= 0)
        return std::string(kSigns[sign].mta);
    std::string_view mailer = h.get("X-Mailer");
    if (text::icontains(mailer, "exchange")) return "exchange";
    std::string from = ascii_lower(h.get("From"));
    if (from.find("googlemail.com") != std::string::npos ||
        from.find("google.com") != std::string::npos)
        return "gmail";
    if (from.find("amazonses") != std::string::npos) return "amazonses";
    if (h.has("X-Failed-Recipients")) return "exim";
    return has_dsn ? "rfc3464" : "unknown";
}

// fml (the Japanese list manager) answers a post it will not distribute with a notice
// from the list's admin address that names the list in a sentence: "You are not a
// member of this mailing list <list@example.org>.", "Duplicated Message-ID in
// <list@example.org>." (a loop alert). Ordinary list mail carries X-MLServer too, so
// the sentence decides.
bool list_refusal(const HeaderList& h, std::string_view notice, Classification& out) {
    if (!istarts_with(text::trim(h.get("X-MLServer")), "fml")) return false;
    struct Refusal {
        std::string_view sentence;
        std::string_view reason;
    };
    static constexpr Refusal kRefusals[] = {
        {"not a member of this mailing list", "rejected"},
        {"duplicated message-id in", "systemerror"},
    };
    for (const auto& r : kRefusals) {
        std::size_t at = text::ifind(notice, r.sentence);
        if (at == std::string_view::npos) continue;
        std::size_t lt = notice.find('<', at);
        std::size_t gt = lt == std::string_view::npos ? lt : notice.find('>', lt);
        if (gt == std::string_view::npos || gt - at > 200) continue;
        std::string_view list = notice.substr(lt + 1, gt - lt - 1);
        if (!looks_like_address(list)) continue;
        BounceRecipient rcpt;
        rcpt.address = clean_address(list);
        rcpt.action = "failed";
        rcpt.reason = std::string(r.reason);
        std::size_t line = notice.rfind('\n', at);
        line = line == std::string_view::npos ? 0 : line + 1;
        rcpt.diagnostic = one_line(notice.substr(line, gt + 1 - line));
        out.kind = MessageKind::dsn;
        out.recipients.push_back(std::move(rcpt));
        return true;
    }
    return false;
}

}  // namespace backstop::detail
