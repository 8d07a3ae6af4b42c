// Reasons: the remote server's words first (they are more specific than the status
// codes servers pick), then the status code, then the reply code. The phrase lists
// were written from real bounces; order matters where phrases overlap.
#include "backstop/bounce/reason.hpp"

#include <array>
#include <cctype>
#include <initializer_list>
#include <string>
#include <string_view>

#include "mime_text.hpp"
#include "phrase_set.hpp"

namespace backstop {

namespace {

struct PhraseRule {
    std::string_view reason;
    std::initializer_list<std::string_view> phrases;  // lowercase substrings
    // RFC 5321's stock text for a reply code, which servers send for any refusal
    // of that kind: it names no failure of its own.
    bool stock_text = false;
};

// Checked in this order; the first rule with a matching phrase wins.
const PhraseRule kRules[] = {
    // Explicit verdicts first: they name the reason outright.
    {"spamdetected",
     {"scored as spam", "rejected due to spam", "spam classification",
      // content verdicts: spam patterns, URI blocklists (links in the message)
      "spam pattern", "spam content", "uribl", "surbl"}},
    {"authfailure",
     {"spf check failed",
      "spf fail",
      "spf: ",
      "sender policy framework",
      "dmarc policy",
      "dkim signature",
      "authentication failure",
      "authentication-results",
      "dmarc check failed",
      "is not authorized to send",
      "does not pass dmarc",
      "unauthenticated email",
      "does not have authentication information",
      "fails to pass authentication",
      "not authorized to send on behalf",
      "550 5.7.26",
      "5.7.509",
      "sender dmarc",
      "dmarc policy",
      "spf authentication",
      "spf validation",
      "failed an spf check",
      "spf record"}},
    {"requireptr",
     {"no ptr record", "reverse dns", "ptr record", "no rdns", "cannot resolve your address",
      "cannot find your hostname", "client host rejected: cannot find your",
      "your ip has no reverse", "reverse lookup", "does not have a reverse",
      "hostname lookup failed", "unresolvable address", "no dns ptr", "5.7.25",
      "ip name lookup failed", "rdns", "please use your isp", "the sending mta's poor reputation",
      "without a valid ptr"}},
    {"badreputation",
     {"poor reputation", "bad reputation", "low reputation", "sender reputation", "4.7.650",
      "ip reputation"}},
    {"suspend", {"recipient account is blocked"}},
    {"filtered",
     {"550 : user unknown", ": : user unknown", "550: : user unknown",
      "refused due to recipient preferences", "message filtered", "user refuses to receive"}},
    {"requireptr", {"unverifyable sending ip", "unverifiable sending ip"}},
    {"onhold", {"on hold"}},
    {"systemerror",
     {"insufficient permission",
      // Postfix: the MX points at a host that does not take the domain (a loop)
      "loops back to myself",
      // an ambiguous recipient name (RFC 3463's X.1.4): the directory, not the mailbox
      "several matches found", "not unique"}},
    {"spamdetected", {"ofr_506", "mail rejete", "blacklisted url"}},
    {"blocked", {"ofr_999", "spamhaus"}},
    {"systemerror", {"ofr005_505"}},
    {"policyviolation", {"lpn000_630", "network not allowed"}},
    {"rejected", {"purported responsible address", "address that has been blacklisted"}},
    {"mailererror", {"generated during the delivery attempt"}},
    {"syntaxerror", {"malformed address"}},
    {"userunknown",
     {"ディレクトリのリストにありません", "ディレクトリには見つかりません",
      "recipient address rejected: access denied", "address rejected.",
      "invalid final delivery userid", "check if address is correct"}},
    {"hostunknown",
     {"host or domain name not found", "account or domain may not exist", "dns lookup failure"}},
    {"notaccept", {"doesn't receive email", "does not receive email"}},
    {"mailboxfull",
     {"mailbox is full", "mailbox full", "mailbox exceeds allowed size", "over quota",
      // before mesgtoobig's "size limit": the mailbox's size, not the message's
      "mailbox size limit"}},
    {"suspend", {"temporary locked", "temporarily locked"}},
    {"contenterror", {"duplicate header"}},
    {"norelaying", {"email address is not verified"}},
    {"blocked", {"smtp server of your isp"}},
    {"rejected", {"unexpected volume or user complaints"}},
    {"toomanyconn",
     {"connection rate limit", "frequency limited", "too many connections", "too many simultaneous",
      "too many concurrent", "connection limit"}},
    {"notcompliantrfc",
     {"not rfc 5322 compliant", "not rfc5322 compliant", "multiple addresses in from",
      "multiple subject headers", "not rfc compliant", "addresses in from: header", "rfc 5322",
      "rfc5322", "rfc 2822", "rfc2822", "multiple from"}},
    {"networkerror",
     {"wasn't able to establish an smtp connection", "name service error", "dns error",
      "malformed or unexpected name server reply", "no route to host"}},
    {"notaccept",
     {"no mx found", "no mx record found", "couldn't find a mail exchanger", "no smtp service",
      "does not accept mail", "not accept mail", "null mx", "accepts no mail", "no mail accepted"}},
    {"expired",
     {"retry timeout exceeded", "failing for a long time", "message will be retried",
      "was aborted after", "host not reachable", "did not accept our requests to connect",
      "delivery time expired", "message expired", "could not be delivered within",
      "was not delivered within", "retry time not reached", "delivery expired", "message timed out",
      "unable to deliver in"}},
    // The receiving server hung up on the connection (at the greeting or HELO): the
    // client was refused, not a network fault. After the expiry wordings, since a
    // delayed notice that says so is about the retries.
    {"blocked", {"dropped by remote host", "connection dropped"}},
    {"systemerror",
     {"unable to contact ldap", "service currently unavailable", "transaction failed",
      "queue file write error", "internal system error", "could not load drd"}},
    {"mailererror",
     {"mailer error", "command died", "command failed", "program exited", "exit code"}},
    {"policyviolation",
     {"header error", "denied by policy", "content presents a potential", "policy violation"}},
    {"securityerror",
     {"unauthenticated senders not allowed", "turn on smtp authentication",
      "authentication required", "delivery not authorized", "must authenticate"}},
    {"norelaying",
     {"not configured to relay", "relay access denied", "relaying denied", "as a relay",
      // qmail: the domain is not one this server accepts mail for
      "allowed rcpthosts"}},
    {"blocked",
     {"blocked using", "client host blocked", "not accepting connections", "invalid ip for sending",
      "blocked - see", "dnsbl", "blacklisted by", "has been blacklisted", "ip blocked", "rbl"}},
    {"syntaxerror",
     {"improper sequence of commands", "command parameter not implemented", "syntax error",
      "bad sequence of commands", "command unrecognized"}},
    {"requireptr", {"mismatches client ip", "reverse dns", "no ptr record", "ptr record"}},
    {"rejected",
     {"access denied", "sender address rejected", "sender rejected", "unroutable sender",
      "sender was rejected", "domain of sender address", "sender domain", "sender verify failed",
      "sender address is not", "invalid sender", "not a registered gateway user"}},
    {"speeding",
     {"rate limit", "rate-limit", "sending too fast", "throttl", "too many recipients this hour",
      "has sent to too many recipients", "receiving mail at a rate", "exceeded the rate",
      "unusual rate", "too much mail", "message rate"}},
    {"toomanyconn",
     {"too many connections", "too many simultaneous", "too many concurrent", "connection limit",
      "max connections", "too many smtp sessions", "too many recipients", "too many sessions"}},
    {"virusdetected", {"virus", "malware", "infected", "dangerous attachment", "malicious"}},
    {"mesgtoobig",
     {"message too large", "message is too large", "message size exceeds", "message too big",
      "exceeds size limit", "size limit", "mail size", "message exceeds", "size exceeds",
      "message file too big", "too big for", "message length exceeds", "line too long",
      "exceeded maximum message size", "maximum message size", "line limit exceeded",
      "max message size", "message size exceeded"}},
    {"mailboxfull",
     {"mailbox full",
      "mailbox is full",
      "mailbox_full",
      "mailbox exceeded",
      "over quota",
      "overquota",
      "over the quota",
      "quota exceeded",
      "exceeded storage",
      "exceeds quota",
      "quota",
      "mailbox size limit",
      "insufficient storage",
      "storage limit",
      "mailfolder is full",
      "not enough storage",
      "disk full",
      "user's mailbox is full",
      "account is full",
      "mailbox has exceeded",
      "full mailbox",
      "inbox is full",
      "boite du destinataire pleine",
      "exceeded the space",
      "mbox full",
      "too many messages in",
      "is over the limit",
      "no space left",
      "mailbox overfull",
      "mail box full",
      "out of space",
      "not have enough space",
      "has too many messages"}},
    {"exceedlimit",
     {"exceeded the maximum", "exceeds the limit", "limit exceeded", "exceed limit"}},
    {"hasmoved", {"has been replaced by", "has moved", "no longer valid, please use"}},
    {"suspend",
     {"account disabled",
      "account has been disabled",
      "account is disabled",
      "disabled",
      "suspended",
      "account inactive",
      "inactive account",
      "is inactive",
      "not active",
      "mailbox unavailable or not active",
      "account expired",
      "deactivated",
      "no longer active",
      "blocked account",
      "account frozen",
      "mailbox is frozen",
      "user suspended",
      "mailbox currently suspended",
      "account is locked",
      "account has been locked",
      "recipient suspended",
      "has been suspended",
      "is unavailable: user is terminated",
      "discontinued",
      "mailbox is inactive"}},
    {"norelaying",
     {"relay access denied", "relaying denied", "relay not permitted", "not permitted to relay",
      "relaying not allowed", "we do not relay", "unable to relay", "relay denied",
      "relay prohibited", "not allowed to relay", "relaying mail to", "is not a gateway",
      "no relaying", "relay not allowed", "open relay", "relaying is prohibited",
      "relay rejected"}},
    {"hostunknown",
     {"host unknown",
      "unknown host",
      "host not found",
      "domain not found",
      "no such domain",
      "domain does not exist",
      "name or service not known",
      "unrouteable address",
      "unrouteable mail domain",
      "unroutable",
      "host or domain name not found",
      "name server error",
      "domain name not found",
      "nxdomain",
      "invalid domain",
      "unknown domain",
      "domain is not",
      "not a valid domain",
      "can't resolve",
      "cannot resolve",
      "does not resolve",
      "dns lookup failed",
      "hostname is unknown",
      "nonexistent domain",
      "no valid hosts",
      "illegal host/domain",
      "host is unknown",
      "domain name is not found"}},
    {"userunknown",
     {"user unknown",
      "unknown user",
      "no such user",
      "user not found",
      "no such mailbox",
      "mailbox not found",
      "does not exist",
      "doesn't exist",
      "not exist",
      "unknown recipient",
      "recipient unknown",
      "invalid recipient",
      "recipient not found",
      "no mailbox",
      "no mail box",
      "mail-box not found",
      "bad_recipient",
      "not an active address",
      "unknown local part",
      "unknown address",
      "address unknown",
      "user doesn't have",
      "no such recipient",
      "not our customer",
      "invalid mailbox",
      "is not a valid mailbox",
      "bad destination mailbox",
      "unknown or illegal alias",
      "no such account",
      "account not found",
      "no such person",
      "recipient does not",
      "is not a known user",
      "user invalid",
      "invalid address",
      "address invalid",
      "unknown mailbox",
      "this user doesn't",
      "user doesn't exist",
      "no valid recipients",
      "non-existent",
      "nonexistent",
      "not a valid user",
      "recipient is not",
      "undeliverable address",
      "could not be found",
      "couldn't be found",
      "no such local user",
      "not listed",
      "unknown or invalid",
      "does not have an account",
      "email account that you tried to reach",
      "utilisateur inconnu",
      "adresse inconnue",
      "user is unknown",
      "address is unknown",
      "deliver to this user",
      "addressee unknown",
      "mailbox does not",
      "no account",
      "unknown email",
      "user has no",
      "not a valid recipient",
      "recipient rejected",
      "invalid user",
      "unknown mail",
      "was not found",
      "no user",
      "rejected: unknown",
      "destination mailbox",
      "recipient's email",
      "failed: recipient",
      "is disabled in this domain"}},
    // "550 Requested action not taken: mailbox unavailable" (RFC 5321 §4.2.3) is said
    // of missing mailboxes and of policy refusals alike.
    {"userunknown",
     {"mailbox unavailable", "mailbox not available", "mailbox is unavailable"},
     true},
    {"spamdetected",
     {"spam", "junk mail", "unsolicited", "bulk mail", "content filter rejection",
      "message content rejected", "rejected as bulk", "classified as junk", "scored too high",
      "uce", "message looks like", "detected as spam", "bulk email", "mass mailer"}},
    {"blocked",
     {"blacklist",
      "blocklist",
      "block list",
      "black list",
      "dnsbl",
      "rbl",
      "listed at",
      "listed in",
      "is listed",
      "blocked by",
      "connection refused",
      "client host rejected",
      "your ip",
      "your host",
      "your server",
      "ip address",
      "not allowed to send",
      "refused to talk",
      "is blocked",
      "has been blocked",
      "banned",
      "mail from your",
      "sender ip",
      "connection rejected",
      "administrative prohibition",
      "block"}},
    {"filtered",
     {"filter", "refused by recipient", "recipient does not accept", "not authorized",
      "rejected by recipient", "blocked by recipient", "by policy", "sender rejected",
      "rejected by the recipient", "mail is not accepted"}},
    {"policyviolation", {"policy", "prohibited", "not permitted", "violat"}},
    {"contenterror",
     {"content rejected", "content error", "invalid content", "illegal content", "mime error",
      "invalid mime", "malformed mime", "encoding error", "8bit data", "8-bit data", "binary data",
      "attachment not allowed", "prohibited attachment", "media error"}},
    {"securityerror",
     {"tls", "starttls", "certificate", "encryption", "authentication required",
      "must authenticate", "authentication is required", "auth "}},
    {"syntaxerror",
     {"syntax error", "command unrecognized", "unrecognized command", "bad sequence",
      "command not recognized", "line too long", "syntax"}},
    {"expired",
     {"retry timeout", "retry time", "timed out", "time out", "timeout", "too long", "no answer",
      "delivery time expired", "could not be delivered for", "has been delayed", "giving up",
      "expired", "message expired", "for more than", "was not delivered within",
      "past the time limit", "queue time", "deferred"}},
    {"networkerror",
     {"network", "connection reset", "connection closed", "connection lost", "lost connection",
      "unreachable", "could not connect", "couldn't connect", "unable to connect",
      "failed to connect", "loop", "hop count", "too many hops", "resolve"}},
    {"systemfull", {"system full", "disk space", "queue full", "out of memory", "system storage"}},
    {"systemerror",
     {"system error", "internal error", "server error", "local error", "processing error",
      "system failure", "configuration error", "error in processing", "server too busy",
      "out of service", "shutting down", "service unavailable", "resources"}},
    {"notaccept",
     {"does not accept mail", "not accept mail", "null mx", "accepts no mail", "no mail accepted",
      "domain does not accept"}},
    {"mailererror",
     {"mailer error", "command failed", "command died", "exit code", "pipe to", "procmail",
      "unknown mailer", "program exited", "x-unix"}},
    {"expired", {"in the queue too long", "resources temporarily unavailable"}},
};

// All rule phrases in one matcher; the id is the rule's position.
const detail::PhraseSet& rule_phrases() {
    static const detail::PhraseSet set = [] {
        detail::PhraseSet s;
        int id = 0;
        for (const auto& rule : kRules) {
            for (std::string_view p : rule.phrases) s.add(id, p);
            ++id;
        }
        s.build();
        return s;
    }();
    return set;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

}  // namespace

std::string find_status_code(std::string_view t) {
    return find_status_code_from(t, 0, nullptr);
}

std::string find_last_status_code(std::string_view t) {
    // The last failure code; a success code only when there is no failure at all
    // (transcripts end with "221 2.0.0 Bye").
    std::string last, last_failure;
    std::size_t at = 0;
    while (true) {
        std::size_t end = 0;
        std::string code = find_status_code_from(t, at, &end);
        if (code.empty()) return last_failure.empty() ? last : last_failure;
        if (code[0] != '2') last_failure = code;
        last = std::move(code);
        at = end;
    }
}

std::string find_status_code_from(std::string_view t, std::size_t from, std::size_t* end) {
    for (std::size_t i = from; i + 5 <= t.size(); ++i) {
        char c = t[i];
        if (c != '2' && c != '4' && c != '5') continue;
        if (i > 0 && (is_digit(t[i - 1]) || t[i - 1] == '.')) continue;
        if (t[i + 1] != '.') continue;
        std::size_t j = i + 2;
        std::size_t a = j;
        while (j < t.size() && is_digit(t[j]) && j - a < 4) ++j;
        if (j == a || j - a > 3 || j >= t.size() || t[j] != '.') continue;
        std::size_t b = ++j;
        while (j < t.size() && is_digit(t[j]) && j - b < 4) ++j;
        if (j == b || j - b > 3) continue;
        if (j < t.size() &&
            (is_digit(t[j]) || (t[j] == '.' && j + 1 < t.size() && is_digit(t[j + 1]))))
            continue;
        if (end) *end = j;
        return std::string(t.substr(i, j - i));
    }
    return {};
}

std::string find_reply_code(std::string_view t) {
    // The first failure reply; a success reply only when there is no failure.
    std::string first_success;
    for (std::size_t at = 0;;) {
        std::size_t end = 0;
        std::string code = find_reply_code_from(t, at, &end);
        if (code.empty()) return first_success;
        if (code[0] != '2') return code;
        if (first_success.empty()) first_success = code;
        at = end;
    }
}

std::string find_reply_code_from(std::string_view t, std::size_t from, std::size_t* end) {
    for (std::size_t i = from; i + 3 <= t.size(); ++i) {
        char c = t[i];
        if (c != '2' && c != '4' && c != '5') continue;
        if (i > 0 && (is_digit(t[i - 1]) || t[i - 1] == '.' || t[i - 1] == '#' || t[i - 1] == '-' ||
                      t[i - 1] == ':' || t[i - 1] == '/' || t[i - 1] == '+' ||
                      std::isalpha(static_cast<unsigned char>(t[i - 1]))))
            continue;
        if (!is_digit(t[i + 1]) || !is_digit(t[i + 2])) continue;
        if (t[i + 1] > '5') continue;
        char after = i + 3 < t.size() ? t[i + 3] : ' ';
        if (after != ' ' && after != '-' && after != '\n' && after != '\t') continue;
        if (end) *end = i + 3;
        return std::string(t.substr(i, 3));
    }
    return {};
}

std::string_view reason_from_status(std::string_view s) {
    if (s.size() < 5) return {};
    std::string_view sub = s.substr(2);  // "1.1" of "5.1.1"
    struct Entry {
        std::string_view code;
        std::string_view reason;
    };
    static constexpr Entry kTable[] = {
        {"1.1", "userunknown"},    {"1.2", "hostunknown"},   {"1.3", "userunknown"},
        {"1.4", "userunknown"},    {"1.5", "userunknown"},   {"1.6", "hasmoved"},
        {"1.7", "rejected"},       {"1.8", "rejected"},      {"1.9", "systemerror"},
        {"1.10", "notaccept"},     {"2.0", "filtered"},      {"2.1", "filtered"},
        {"2.2", "mailboxfull"},    {"2.3", "exceedlimit"},   {"2.4", "systemerror"},
        {"3.0", "systemerror"},    {"3.1", "systemfull"},    {"3.2", "notaccept"},
        {"3.3", "systemerror"},    {"3.4", "mesgtoobig"},    {"3.5", "systemerror"},
        {"4.0", "networkerror"},   {"4.1", "networkerror"},  {"4.2", "networkerror"},
        {"4.3", "systemerror"},    {"4.4", "hostunknown"},   {"4.5", "networkerror"},
        {"4.6", "networkerror"},   {"4.7", "expired"},       {"5.0", "syntaxerror"},
        {"5.1", "syntaxerror"},    {"5.2", "syntaxerror"},   {"5.3", "exceedlimit"},
        {"5.4", "syntaxerror"},    {"5.5", "syntaxerror"},   {"5.6", "syntaxerror"},
        {"6.0", "contenterror"},   {"6.1", "contenterror"},  {"6.2", "contenterror"},
        {"6.3", "contenterror"},   {"6.4", "contenterror"},  {"6.5", "contenterror"},
        {"6.9", "contenterror"},   {"7.0", "securityerror"}, {"7.1", "securityerror"},
        {"7.2", "securityerror"},  {"7.3", "securityerror"}, {"7.4", "securityerror"},
        {"7.5", "securityerror"},  {"7.6", "securityerror"}, {"7.7", "securityerror"},
        {"7.8", "securityerror"},  {"7.9", "securityerror"}, {"7.13", "suspend"},
        {"7.14", "securityerror"}, {"7.25", "requireptr"},   {"7.26", "authfailure"},
        {"7.27", "notaccept"},     {"7.23", "authfailure"},  {"7.24", "authfailure"},
        {"7.509", "authfailure"},  {"7.606", "blocked"},     {"7.650", "badreputation"},
        {"1.351", "userunknown"},
    };
    for (const auto& e : kTable)
        if (sub == e.code) return e.reason;
    return {};
}

namespace {

// Status codes whose meaning no wording overrides.
std::string_view decisive_reason(std::string_view status) {
    struct Entry {
        std::string_view code;
        std::string_view reason;
    };
    static constexpr Entry kDecisive[] = {
        {"5.1.1", "userunknown"},     {"5.1.2", "hostunknown"},  {"5.1.6", "hasmoved"},
        {"5.1.7", "rejected"},        {"5.1.8", "rejected"},     {"5.1.10", "userunknown"},
        {"5.1.351", "userunknown"},   {"4.1.1", "userunknown"},  {"5.2.2", "mailboxfull"},
        {"4.2.2", "mailboxfull"},     {"5.2.3", "exceedlimit"},  {"5.3.4", "mesgtoobig"},
        {"5.3.2", "notaccept"},       {"5.3.5", "systemerror"},  {"4.3.2", "toomanyconn"},
        {"4.4.5", "systemfull"},      {"5.4.6", "networkerror"}, {"4.4.6", "networkerror"},
        {"5.4.312", "networkerror"},  {"5.4.316", "expired"},    {"4.4.7", "expired"},
        {"5.6.1", "contenterror"},    {"5.6.9", "contenterror"}, {"5.7.13", "suspend"},
        {"5.7.25", "requireptr"},     {"5.7.26", "authfailure"}, {"5.7.27", "notaccept"},
        {"5.7.509", "authfailure"},   {"5.7.606", "blocked"},    {"4.7.650", "badreputation"},
        {"5.7.9", "policyviolation"},
    };
    for (const auto& e : kDecisive)
        if (status == e.code) return e.reason;
    return {};
}

}  // namespace

// Wordings that mean "no such mailbox" whatever command they answered: the MTAs that
// write them check recipients before accepting a message.
bool strong_userunknown(std::string_view diagnostic) {
    static const detail::PhraseSet phrases = [] {
        detail::PhraseSet s;
        for (std::string_view p :
             {"recipient name is not recognized", "not listed in domino directory",
              "ディレクトリのリストにありません", "ディレクトリには見つかりません",
              "not listed in public name & address book", "invalid final delivery userid",
              "check if address is correct", "user not exist", "no such user here", "unknown user",
              "no mailbox here by that name", "does not have an account", "no such user",
              "no valid recipients",
              // Gmail's own notice, stating the remote server's verdict on the address.
              "because the address couldn't be found"})
            s.add(0, p);
        s.build();
        return s;
    }();
    return phrases.best(diagnostic) >= 0;
}

namespace {

// Servers that accept every RCPT and look the mailbox up after DATA, in the words
// they use for a missing one: Yahoo's "554 delivery error: dd This user doesn't have
// a yahoo.com account" (its "dd" replies are about the destination mailbox).
bool userunknown_at_data(std::string_view diagnostic) {
    return text::icontains(diagnostic, "delivery error: dd ");
}

// "5.2.1": X.2.X, the mailbox's state.
bool mailbox_state_status(std::string_view status) {
    return status.size() >= 5 && status.substr(1, 3) == ".2.";
}

// "5.0.0", "4.0.0": the class and nothing else.
bool undefined_detail(std::string_view status) {
    return status.size() == 5 && status.substr(1) == ".0.0";
}

// "553 mail.example.org does not exist": what does not exist is a host name (dots,
// no '@', a top-level label of letters), not a mailbox.
bool names_missing_domain(std::string_view diagnostic) {
    for (std::string_view phrase : {" does not exist", " doesn't exist", " does not resolve"}) {
        for (std::size_t at = text::ifind(diagnostic, phrase); at != std::string_view::npos;
             at = text::ifind(diagnostic, phrase, at + 1)) {
            std::size_t b = at;
            while (b > 0 && diagnostic[b - 1] != ' ') --b;
            std::string_view word = diagnostic.substr(b, at - b);
            while (!word.empty() && (word.front() == '<' || word.front() == '"' ||
                                     word.front() == '\'' || word.front() == '('))
                word.remove_prefix(1);
            while (!word.empty() &&
                   (word.back() == '>' || word.back() == '"' || word.back() == '\'' ||
                    word.back() == ')' || word.back() == '.'))
                word.remove_suffix(1);
            std::size_t dot = word.rfind('.');
            if (dot == std::string_view::npos || dot == 0 || dot + 2 > word.size()) continue;
            bool host = true;
            for (char c : word)
                if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
                    host = false;
            for (char c : word.substr(dot + 1))
                if (!std::isalpha(static_cast<unsigned char>(c))) host = false;
            if (host) return true;
        }
    }
    return false;
}

}  // namespace

// "Delivery failed 20 attempts": retries ran out.
bool gave_up_after_attempts(std::string_view t) {
    std::size_t at = text::ifind(t, "failed ");
    while (at != std::string_view::npos) {
        std::size_t p = at + 7;
        std::size_t digits = 0;
        while (p < t.size() && is_digit(t[p])) ++p, ++digits;
        if (digits > 0 && istarts_with(t.substr(p), " attempt")) return true;
        at = text::ifind(t, "failed ", at + 1);
    }
    return false;
}

std::string smtp_command_of(std::string_view t) {
    enum { kData, kRcpt, kMail, kConn };
    static const detail::PhraseSet phrases = [] {
        detail::PhraseSet s;
        for (std::string_view p :
             {"in reply to end of data", "in reply to data", "after end of data",
              "did not like our final data", "after data", "end of data command",
              // A labelled section naming the command (m-FILTER: "SMTP command\nDATA").
              "smtp command data", "smtp command: data"})
            s.add(kData, p);
        for (std::string_view p :
             {"in reply to rcpt to", "after rcpt to", "did not like our rcpt to", "[rcpt_to]",
              "rcpt to command", "rcpt to response", "rcpt to:<", "rcpt to: <", "rcpt command",
              "does not like recipient", "smtp command rcpt", "smtp command: rcpt",
              // Gmail's older notices number the SMTP state of the reply they quote;
              // 14 is the answer to RCPT TO ("User unknown", "Mailbox full").
              "(state 14)"})
            s.add(kRcpt, p);
        for (std::string_view p :
             {"in reply to mail from", "after mail from", "[mail_from]", "sender was rejected",
              "mail from command", "smtp command mail", "smtp command: mail"})
            s.add(kMail, p);
        for (std::string_view p : {"after initial connection", "my name was rejected", "after helo",
                                   "after ehlo", "in reply to helo", "in reply to ehlo"})
            s.add(kConn, p);
        s.build();
        return s;
    }();
    static constexpr const char* kNames[] = {"DATA", "RCPT", "MAIL", "CONN"};
    if (int c = phrases.best(t); c >= 0) return kNames[c];
    // Sendmail transcripts: the last command sent before the reply.
    std::size_t last = t.rfind(">>> ");
    if (last != std::string_view::npos) {
        std::string_view cmd = t.substr(last + 4, 9);
        if (istarts_with(cmd, "data")) return "DATA";
        if (istarts_with(cmd, "rcpt")) return "RCPT";
        if (istarts_with(cmd, "mail")) return "MAIL";
    }
    return {};
}

std::string bounce_reason(std::string_view status, std::string_view reply_code,
                          std::string_view diagnostic, std::string_view command) {
    std::string_view decisive = decisive_reason(status);
    if (!decisive.empty() && decisive != "userunknown") return std::string(decisive);
    if (decisive == "userunknown") {
        // "Bad destination mailbox" unless the words name another known failure.
        int rule = rule_phrases().best(diagnostic);
        std::string_view words = rule >= 0 ? kRules[rule].reason : std::string_view();
        // A suspended account exists: the words are more precise than the code.
        for (std::string_view other :
             {"mailboxfull", "norelaying", "blocked", "hasmoved", "rejected", "notaccept",
              "mesgtoobig", "exceedlimit", "speeding", "filtered", "suspend"})
            if (words == other) return std::string(words);
        return std::string(decisive);
    }
    std::string reason;
    bool stock_text = false;
    if (int rule = rule_phrases().best(diagnostic); rule >= 0) {
        reason = kRules[rule].reason;
        stock_text = kRules[rule].stock_text;
    }
    if (reason.empty() && gave_up_after_attempts(diagnostic)) reason = "expired";
    if (reason == "userunknown" && names_missing_domain(diagnostic)) reason = "hostunknown";
    // Refused at connection time: the client was blocked, whatever the words.
    if (command == "CONN") return reason == "requireptr" ? reason : "blocked";
    // "User unknown" in answer to DATA: a filter at the recipient speaking, not a
    // missing mailbox (unless the server is one that checks mailboxes only then).
    // Without a command, only a status about the mailbox or the wording can tell; a
    // status of X.0.0 ("other undefined status", RFC 3463) gives nothing but the class,
    // no more than the reply code does.
    if (reason == "userunknown" && ((command == "DATA" && !userunknown_at_data(diagnostic)) ||
                                    (command.empty() && !strong_userunknown(diagnostic) &&
                                     (status.empty() || undefined_detail(status) ||
                                      status.starts_with("5.2.") || status.starts_with("5.7.")))))
        return "filtered";
    // A status of X.2.X is about the state of a mailbox that exists (disabled, full,
    // over a limit, RFC 3463): the stock "mailbox unavailable" under it is no missing
    // mailbox (an explicit "user unknown" still is).
    if (stock_text && mailbox_state_status(status)) {
        std::string_view by_status = reason_from_status(status);
        return std::string(by_status.empty() ? "filtered" : by_status);
    }
    // Failures in answer to MAIL FROM are about the sender.
    if (command == "MAIL" && (reason.empty() || reason == "userunknown" || reason == "hostunknown"))
        return "rejected";
    if (!reason.empty()) return reason;
    std::string_view by_status = reason_from_status(status);
    if (!by_status.empty()) return std::string(by_status);
    if (!status.empty() && status[0] == '4') return "onhold";
    if (!reply_code.empty() && reply_code[0] == '4') return "onhold";
    return "undefined";
}

std::string bounce_reason(std::string_view status, std::string_view reply_code,
                          std::string_view diagnostic) {
    return bounce_reason(status, reply_code, diagnostic, smtp_command_of(diagnostic));
}

bool is_hard_bounce(std::string_view reason, std::string_view reply_code, std::string_view status) {
    if (reason == "userunknown" || reason == "hostunknown" || reason == "hasmoved") return true;
    if (reason == "notaccept") {
        // Permanent unless the server said it was temporary.
        if (!reply_code.empty()) return reply_code[0] != '4';
        return status.empty() || status[0] != '4';
    }
    return false;
}

}  // namespace backstop
