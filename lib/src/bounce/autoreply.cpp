// Auto-replies (RFC 3834 and the headers and subjects vacation programs use) and
// challenge-response systems. Called only once structure has ruled out a DSN.
#include <array>
#include <string_view>

#include "bounce_internal.hpp"
#include "mime_text.hpp"
#include "phrase_set.hpp"

namespace backstop::detail {

namespace {

// Lowercase subject fragments of vacation notices, in several languages.
constexpr std::array<std::string_view, 34> kVacationSubjects = {
    "auto reply",
    "auto-reply",
    "autoreply",
    "automatic reply",
    "auto response",
    "autoresponse",
    "auto-response",
    "automatic response",
    "out of office",
    "out of the office",
    "out-of-office",
    "away from my",
    "away until",
    "on vacation",
    "vacation",
    "on leave",
    "abwesenheit",
    "abwesend",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "absence",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "risposta automatica",
    "fuori ufficio",
    "automatisch antwoord",
    "afwezig",
    "autosvar",
    "frånvaro",
    "不在",
    "自動応答",
    "自動返信",
};

constexpr std::array<std::string_view, 14> kChallengePhrases = {
    "please confirm you are human",
    "confirm that you are a human",
    "verify that you are a human",
    "prove you are human",
    "are you a human",
    "challenge-response",
    "challenge response",
    "please confirm your message",
    "to confirm that you are",
    "click the link below to confirm",
    "awaiting your confirmation",
    "your message is pending",
    "confirm your email",
    "verify you are a real person",
};

}  // namespace

bool is_autoreply(const HeaderList& h, std::string_view subject, std::string_view) {
    std::string_view auto_submitted = h.get("Auto-Submitted");
    if (!auto_submitted.empty() && !istarts_with(text::trim(auto_submitted), "no")) return true;
    if (h.has("X-Autoreply") || h.has("X-Autorespond") || h.has("X-Autoresponder") ||
        h.has("X-Vacation") || h.has("X-Mail-Autoreply"))
        return true;
    std::string precedence = ascii_lower(text::trim(h.get("Precedence")));
    if (precedence == "auto_reply" || precedence == "auto-reply") return true;
    if (iequals(text::trim(h.get("X-Auto-Response-Suppress")), "All") &&
        !text::trim(subject).empty() && text::icontains(subject, "automatic reply"))
        return true;
    std::string s = ascii_lower(subject);
    for (std::string_view v : kVacationSubjects)
        if (s.find(v) != std::string::npos) return true;
    if (precedence == "bulk" || precedence == "junk") {
        // Only with a reply-style subject: newsletters say "bulk" too...
        if (s.starts_with("re:") || s.find("auto") != std::string::npos) return true;
        // ... or with the null envelope sender, which newsletters never use (their
        // bounces must reach them) and auto-responders should (RFC 3834 §3.3).
        if (text::trim(h.get("Return-Path")) == "<>") return true;
    }
    return false;
}

bool is_challenge(const HeaderList& h, std::string_view subject, std::string_view body) {
    if (text::icontains(h.get("X-Delivery-Agent"), "tmda") || h.has("X-TMDA-Confirm") ||
        h.has("X-Boxbe-Status") || text::icontains(h.get("From"), "boxbe") ||
        text::icontains(h.get("From"), "bluebottle") || h.has("X-Bluebottle-Request"))
        return true;
    std::string s = ascii_lower(subject);
    if (s.find("please confirm your") != std::string::npos ||
        s.find("confirmation required") != std::string::npos ||
        s.find("verify your email") != std::string::npos ||
        s.find("request for verification") != std::string::npos)
        return true;
    // Every message not from a mail server is asked this: the phrases in one pass.
    static const PhraseSet phrases = [] {
        PhraseSet set;
        for (std::string_view p : kChallengePhrases) set.add(0, p);
        set.build();
        return set;
    }();
    return phrases.best(body.substr(0, std::min<std::size_t>(body.size(), 4096))) >= 0;
}

}  // namespace backstop::detail
