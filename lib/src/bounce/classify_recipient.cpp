// One failed recipient: its fields from a DSN block or bounce text, completed with
// status, reply code, reason and hard/soft.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "backstop/bounce/mime.hpp"
#include "backstop/bounce/reason.hpp"
#include "bounce_internal.hpp"
#include "classify_internal.hpp"
#include "mime_text.hpp"

namespace backstop::detail {

// A DSN recipient that is a mailbox, not a pipe, a file or a bare route.
bool usable_address(std::string_view a) {
    return !a.empty() && a.front() != '|' && a.front() != '/' && a.front() != '@' &&
           a.find('@') != std::string_view::npos && a.find(':') == std::string_view::npos;
}

namespace {

// PowerMTA writes its own verdict into each recipient block
// (X-PowerMTA-BounceCategory). The categories that name one failure outright stand
// for the reason; the others (policy-related, spam-related, other, ...) come from
// PowerMTA's own guesses over the reply text and say less than the reply itself.
std::string_view powermta_reason(std::string_view category) {
    struct Entry {
        std::string_view category;
        std::string_view reason;
    };
    static constexpr Entry kCategories[] = {
        {"bad-mailbox", "userunknown"},  {"bad-domain", "hostunknown"},
        {"inactive-mailbox", "suspend"}, {"quota-issues", "mailboxfull"},
        {"message-expired", "expired"},
    };
    std::string_view c = text::trim(category);
    for (const auto& e : kCategories)
        if (iequals(c, e.category)) return e.reason;
    return {};
}

// A host name is 'domain' or one of its subdomains.
bool host_within(std::string_view host, std::string_view domain) {
    if (host.size() < domain.size() || !iequals(host.substr(host.size() - domain.size()), domain))
        return false;
    return host.size() == domain.size() || host[host.size() - domain.size() - 1] == '.';
}

// The first word of a Remote-MTA value ("mx.example.jp. (192.0.2.1, ...)"), without
// a trailing dot.
std::string_view remote_host(std::string_view remote_mta) {
    std::string_view h = text::trim(remote_mta);
    std::size_t end = 0;
    while (end < h.size() && !text::is_space(h[end]) && h[end] != '(' && h[end] != '[') ++end;
    h = h.substr(0, end);
    while (!h.empty() && h.back() == '.') h.remove_suffix(1);
    return h;
}

// Japan's mobile carriers answer different failures with the same few words; how
// they tell them apart is part of how their servers behave, so it is known by the
// recipient's domain or the server that answered.
enum class Carrier { other, kddi, docomo };

Carrier carrier_of(const BounceRecipient& r) {
    std::size_t at = r.address.rfind('@');
    std::string_view domain =
        at == std::string::npos ? std::string_view() : std::string_view(r.address).substr(at + 1);
    for (std::string_view host : {domain, remote_host(r.remote_mta)}) {
        if (host.empty()) continue;
        if (host_within(host, "ezweb.ne.jp") || host_within(host, "au.com")) return Carrier::kddi;
        if (host_within(host, "docomo.ne.jp")) return Carrier::docomo;
    }
    return Carrier::other;
}

// au (KDDI) replies "550 <addr>: User unknown", naming the address, when the mailbox
// does not exist, and "550 : User unknown", without it, when the subscriber's
// reception filter refused the mail. The first is a missing mailbox whatever else the
// notice leaves unsaid (no command, no status).
//
// NTT docomo replies "550 Unknown user <addr>" both to RCPT TO for a mailbox that does
// not exist and after DATA when the subscriber's reception settings refuse the sender;
// only the command tells them apart (or a status about the mailbox). After DATA it
// is a refusal of the sender; with no command known, it is not evidence of a missing
// mailbox, and the soft verdict is the safe one.
void carrier_verdict(BounceRecipient& r, std::string_view command) {
    Carrier carrier = carrier_of(r);
    if (carrier == Carrier::kddi) {
        if ((r.reason == "filtered" || r.reason == "userunknown") &&
            text::icontains(r.diagnostic, "<" + r.address + ">: user unknown"))
            r.reason = "userunknown";
    } else if (carrier == Carrier::docomo) {
        if ((r.reason != "filtered" && r.reason != "userunknown") ||
            !text::icontains(r.diagnostic, "unknown user"))
            return;
        bool mailbox_status = r.status.size() >= 3 &&
                              (r.status.substr(1, 2) == ".1" || r.status.substr(1, 2) == ".2");
        if (mailbox_status) return;
        r.reason = command == "RCPT" ? "userunknown" : command == "DATA" ? "rejected" : "filtered";
    }
}

bool says_account_disabled(std::string_view notice) {
    for (std::string_view p : {"account is disabled", "account has been disabled",
                               "account is suspended", "account has been suspended"})
        if (text::icontains(notice, p)) return true;
    return false;
}

}  // namespace

// Per-recipient values from a DSN block, completed from the notice text.
BounceRecipient from_dsn(const DsnRecipientFields& f, std::string_view notice, bool lookups_left) {
    BounceRecipient r;
    if (usable_address(f.final_recipient))
        r.address = clean_address(f.final_recipient);
    else if (usable_address(f.original_recipient))
        r.address = clean_address(f.original_recipient);
    r.action = f.action;
    r.remote_mta = f.remote_mta;
    r.status = find_status_code(f.status);
    std::string diag = one_line(f.diagnostic);
    // Raw ISO-2022-JP in a Diagnostic-Code (Domino in Japanese): its escapes say so.
    if (diag.find("\x1b$B") != std::string::npos)
        diag = convert_to_utf8("iso-2022-jp", std::move(diag));
    if ((diag.empty() || f.diagnostic_type == "x-unix") && lookups_left) {
        std::string near = detail::text_near_address(notice, r.address);
        if (!near.empty()) diag = diag.empty() ? near : diag + " " + near;
    }
    r.diagnostic = diag;
    std::string diag_status = find_last_status_code(diag);
    // The remote server's own code is more precise than the one the reporting MTA
    // chose for its Status field.
    if (!diag_status.empty() && (r.status.empty() || diag_status[0] == r.status[0]))
        r.status = diag_status;
    r.reply_code = find_reply_code(diag);
    // A local delivery program (procmail, a pipe) failed: its exit status is the diagnostic.
    if (f.diagnostic_type == "x-unix" && !f.diagnostic.empty()) {
        // ... unless its words blame a resource (a full disk, a quota, permissions).
        std::string by_words = bounce_reason("", "", diag, "");
        bool resource =
            by_words == "mailboxfull" || by_words == "systemerror" || by_words == "systemfull";
        r.reason = resource ? by_words : "mailererror";
    }
    if (r.reason.empty()) r.reason = powermta_reason(f.fields.get("X-PowerMTA-BounceCategory"));
    return r;
}

// fallback_text: the whole notice, used for a lone recipient whose own lines say
// nothing (the reason may stand above the address, as in MailMarshal's notices).
void finish_recipient(BounceRecipient& r, std::string_view fallback_text, std::string command_hint,
                      bool only_recipient) {
    if (r.status.empty()) r.status = find_last_status_code(r.diagnostic);
    if (r.reply_code.empty()) r.reply_code = find_reply_code(r.diagnostic);
    // A success code alone says nothing about a failure: in "Size (in bytes): 222" it is
    // not even a reply.
    bool no_failure_code = r.reply_code.empty() ||
                           (r.reply_code[0] == '2' && (r.action.empty() || r.action == "failed"));
    bool says_nothing = r.status.empty() && no_failure_code &&
                        bounce_reason("", "", r.diagnostic, "") == "undefined";
    if ((r.diagnostic.empty() || (only_recipient && says_nothing)) && !fallback_text.empty()) {
        if (r.status.empty()) r.status = find_status_code(fallback_text);
        if (no_failure_code) {
            std::string code = find_reply_code(fallback_text);
            if (!code.empty()) r.reply_code = std::move(code);
        }
    }
    if (r.reason.empty()) {
        if (r.action == "delivered" || r.action == "relayed" || r.action == "expanded" ||
            r.action == "deliverable") {
            r.reason = "delivered";
        } else {
            std::string command =
                command_hint.empty() ? smtp_command_of(r.diagnostic) : std::move(command_hint);
            r.reason = bounce_reason(r.status, r.reply_code,
                                     (r.diagnostic.empty() || (only_recipient && says_nothing))
                                         ? fallback_text
                                         : std::string_view(r.diagnostic),
                                     command);
            carrier_verdict(r, command);
        }
        // "User unknown" is also what some providers reply for an account they have
        // disabled; their notice then says so, and that is the more precise verdict (and
        // the safer one: the address may come back).
        if (r.reason == "userunknown" && only_recipient && !r.status.ends_with(".1.1") &&
            says_account_disabled(fallback_text))
            r.reason = "suspend";
        // A delayed delivery that gives up is an expiry when nothing more precise is known.
        if (r.action == "delayed" &&
            (r.reason == "undefined" || r.reason == "onhold" || r.reason == "systemerror" ||
             bounce_reason("", "", r.diagnostic, "") == "undefined"))
            r.reason = "expired";
    }
    if (r.action.empty() && (!r.status.empty() || !r.reply_code.empty())) {
        char c = !r.status.empty() ? r.status[0] : r.reply_code[0];
        r.action = c == '5' ? "failed" : c == '4' ? "delayed" : c == '2' ? "delivered" : "";
    }
    r.hard = is_hard_bounce(r.reason, r.reply_code, r.status);
}

}  // namespace backstop::detail
