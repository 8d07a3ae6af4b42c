#include "backstop/policy/session.hpp"

#include <algorithm>

#include "backstop/base/ascii.hpp"
#include "backstop/envelope/address.hpp"
#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/srs.hpp"
#include "backstop/policy/original_envelope.hpp"
#include "log_line.hpp"

namespace backstop {

namespace {

std::string domain_of(std::string_view address) {
    std::size_t at = address.rfind('@');
    return at == std::string_view::npos ? std::string() : std::string(address.substr(at + 1));
}

// "<alice@ours.example.>" -> "<alice@ours.example>"; anything else as it is.
std::string without_trailing_domain_dots(std::string_view s) {
    std::size_t end = s.size();
    while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\t')) --end;
    std::size_t stop = end > 0 && s[end - 1] == '>' ? end - 1 : end;
    std::size_t cut = stop;
    while (cut > 0 && s[cut - 1] == '.') --cut;
    if (cut == stop || cut == 0 || s.substr(0, cut).rfind('@') == std::string_view::npos ||
        s[cut - 1] == '@')
        return std::string(s);
    return std::string(s.substr(0, cut)) + std::string(s.substr(stop, end - stop));
}

// The log's name for why a tag or SRS address failed: the same words for both.
std::string bad_signature_check(BatvStatus s) {
    switch (s) {
        case BatvStatus::expired:
            return "bad-signature:expired";
        case BatvStatus::bad_signature:
            return "bad-signature:bad-hash";
        case BatvStatus::unknown_key:
            return "bad-signature:unknown-key";
        default:
            return "bad-signature:malformed";
    }
}

std::string bad_signature_check(SrsErrc e) {
    switch (e) {
        case SrsErrc::out_of_date:
            return "bad-signature:expired";
        case SrsErrc::hash_invalid:
        case SrsErrc::hash_too_short:
        case SrsErrc::no_hash:
            return "bad-signature:bad-hash";
        default:
            return "bad-signature:malformed";
    }
}

// 550 5.1.1: a recipient refused for what its hard bounces say about the mailbox.
Decision mailbox_refusal(const std::string& recipient, const std::string& why) {
    Decision d;
    d.step = Step::reject;
    d.code = "550";
    d.xcode = "5.1.1";
    d.text = "<" + printable(recipient) + ">: " + why;
    return d;
}

// Adds a value to a list of distinct values, keeping the first one's place.
void note(std::vector<std::string>& list, std::string value) {
    for (const auto& v : list) {
        if (v == value) return;
    }
    list.push_back(std::move(value));
}

}  // namespace

Session::Session(std::shared_ptr<const Policy> policy, const Clock& clock)
    : policy_(std::move(policy)), clock_(clock), buffer_(policy_->config().classify_max_bytes) {}

Decision Session::connect(std::string_view hostname, std::string_view address, ClientKind kind) {
    (void)hostname;
    local_submission_ = kind == ClientKind::local_submission;
    if (local_submission_) {
        client_ = "local";
        internal_client_ = true;  // sendmail(1): our own users, wherever the MTA says it is
    } else if (auto ip = IpAddress::parse(address)) {
        client_ = printable(address);
        internal_client_ = policy_->is_internal(*ip);
    } else {
        client_ = address.empty() ? std::string("unknown") : printable(address);
        internal_client_ = false;
    }
    return Decision::proceed();
}

Decision Session::helo(std::string_view) {
    return Decision::proceed();
}

void Session::reset_message() {
    sender_.clear();
    sender_null_ = true;
    bounce_ = false;
    own_bounce_ = false;
    relay_recipient_ = false;
    recipients_.clear();
    any_foreign_recipient_ = false;
    rewrites_.clear();
    tags_.clear();
    dropped_.clear();
    unsigned_local_.clear();
    forged_.clear();
    header_counts_.clear();
    message_id_.clear();
    buffer_.clear();
    state_error_.clear();
    checks_.clear();
    exempts_.clear();
}

void Session::abort() {
    reset_message();
}

Decision Session::mail(std::string_view sender, std::string_view auth_authen) {
    reset_message();
    // Postfix's cleanup shows the null sender of a message it did not get over SMTP
    // (its own bounces, through non_smtpd_milters) as an empty MAIL FROM argument.
    if (sender.empty() && local_submission_) sender = "<>";
    direction_ =
        (internal_client_ || !auth_authen.empty()) ? Direction::outbound : Direction::inbound;
    auto a = parse_address(sender);
    // Postfix accepts "alice@ours.example." and queues it without the dot, so the
    // bounces come back to the plain address: sign that one. Only trailing dots are
    // forgiven; any other defect leaves the sender as it is.
    if (!a && direction_ == Direction::outbound) {
        std::string plain = without_trailing_domain_dots(sender);
        if (plain != sender) a = parse_address(plain);
    }
    if (!a) {
        // The MTA accepted it; we only decline to rewrite what we cannot read.
        std::string_view shown = sender;
        if (shown.size() >= 2 && shown.front() == '<' && shown.back() == '>')
            shown = shown.substr(1, shown.size() - 2);  // the log line adds its own <>
        sender_ = printable(shown);
        sender_null_ = false;
        return Decision::proceed();
    }
    sender_null_ = a->is_null();
    sender_ = a->str();
    bounce_ = sender_null_ || policy_->is_bounce_sender(sender_);
    // Our MTA's own bounce of mail it relayed: it goes back to the signed sender, so
    // it is read like any bounce that comes back (the rewrite to the real mailbox,
    // the hard bounces it reports), never signed as outbound mail.
    own_bounce_ = local_submission_ && bounce_;
    if (own_bounce_) direction_ = Direction::inbound;
    return Decision::proceed();
}

Decision Session::reject_reply(Action action, const std::string& recipient,
                               const std::string& why) const {
    Decision d;
    d.step = action == Action::tempfail ? Step::tempfail : Step::reject;
    d.code = action == Action::tempfail ? "451" : "550";
    d.xcode = action == Action::tempfail ? "4.7.1" : "5.7.1";
    d.text = "<" + printable(recipient) + ">: " + policy_->config().reject_text + " (" + why + ")";
    return d;
}

Decision Session::apply(Action action, const std::string& check, const std::string& recipient,
                        const std::string& shown, const std::string& result, const std::string& why,
                        bool& keep) {
    keep = true;
    switch (action) {
        case Action::reject:
        case Action::tempfail:
            keep = false;
            refused_check_ = check;
            count(result == "bad-signature"     ? Counter::rejected_bad_signature
                  : result == "unsigned-bounce" ? Counter::rejected_unsigned_bounce
                  : result == "bounce-storm"    ? Counter::rejected_storm
                  : result == "bounce-replay"   ? Counter::rejected_replay
                                                : Counter::rejected_localpart);
            return reject_reply(action, shown, why);
        case Action::tag:
            note(checks_, check);
            tags_.push_back({shown, result});
            return Decision::proceed();
        case Action::discard:
            note(checks_, check);
            count(Counter::discarded);
            dropped_.push_back(recipient);
            return Decision::proceed();
        case Action::accept:
            note(checks_, check);
            return Decision::proceed();
    }
    return Decision::proceed();
}

LogLine Session::line_start(std::string_view queue_id) const {
    LogLine line(queue_id);
    line.add("direction", direction_ == Direction::outbound ? "outbound" : "inbound")
        .add("client", client_)
        .add("from", "<" + sender_ + ">");
    return line;
}

std::string Session::refusal_line(std::string_view queue_id, std::string_view recipient,
                                  const Decision& d) const {
    std::string_view shown = recipient;
    if (shown.size() >= 2 && shown.front() == '<' && shown.back() == '>')
        shown = shown.substr(1, shown.size() - 2);
    LogLine line = line_start(queue_id);
    line.add("rcpt", "<" + std::string(shown) + ">")
        .add("verdict", d.step == Step::reject ? "reject" : "tempfail")
        .add("check", refused_check_)
        .add_quoted("reply", d.code + " " + d.xcode + " " + d.text);
    return line.str();
}

// True when the MTA's route for a recipient is already the mailbox its tag or SRS
// address stands for: the address, or (local mailer) its local part.
static bool routed_to(const MtaRoute& route, const std::string& mailbox) {
    if (route.addr.empty()) return false;
    if (iequals(route.addr, mailbox)) return true;
    const auto at = mailbox.rfind('@');
    return at != std::string::npos && route.host.empty() &&
           iequals(route.addr, std::string_view(mailbox).substr(0, at));
}

Decision Session::rcpt(std::string_view recipient, std::string_view queue_id,
                       const MtaRoute& route) {
    refused_check_.clear();
    const std::size_t rewrites_before = rewrites_.size();
    Decision d = check_rcpt(recipient);
    // Sendmail with the reverse socket map has resolved the tag at RCPT, and for a
    // +detail address expanded it into entries a DELRCPT of the tag removes while the
    // ADDRCPT of the mailbox counts as their duplicate: the message would reach nobody.
    if (rewrites_.size() > rewrites_before && routed_to(route, rewrites_.back().original))
        rewrites_.back().routed_by_mta = true;
    if (d.step == Step::reject || d.step == Step::tempfail)
        d.log_line = refusal_line(queue_id, recipient, d);
    return d;
}

Decision Session::check_rcpt(std::string_view recipient) {
    auto a = parse_address(recipient);
    // Postfix accepts forms we refuse (a trailing dot, a comment, white space, a
    // backslash) and delivers them to the mailbox they name. Inbound, read such a
    // recipient loosely so that one at our domains is checked as unsigned: letting
    // it through would let any bounce past the check.
    const bool loose = !a && direction_ == Direction::inbound;
    if (loose) a = parse_address_loose(recipient);
    if (!a || a->is_null()) return Decision::proceed();  // the MTA judges syntax
    const std::string bare = a->str();
    const std::string raw(recipient);
    if (direction_ == Direction::outbound) return outbound_rcpt(bare, a->domain);
    std::string mailbox = bare;  // where an accepted recipient's mail really goes
    bool keep = true;
    Decision d = inbound_rcpt(*a, raw, bare, mailbox, keep, loose);
    // A storm of bounces at one mailbox is limited even when every one is signed:
    // a leaked tag, or a joe-job against an exempt address, must not flood it.
    if (keep && d.step == Step::proceed && bounce_ && !own_bounce_ && !dropped_recipient(raw)) {
        if (mailbox != bare) {
            if (auto replay = replay_check(raw, bare, a->domain, keep)) d = *replay;
        }
        if (keep && d.step == Step::proceed && !dropped_recipient(raw)) {
            if (auto storm = storm_check(raw, bare, mailbox, keep)) d = *storm;
        }
    }
    if (keep) recipients_.push_back(raw);
    return d;
}

bool Session::dropped_recipient(const std::string& raw) const {
    for (const auto& d : dropped_) {
        if (d == raw) return true;
    }
    return false;
}

std::optional<Decision> Session::storm_check(const std::string& raw, const std::string& bare,
                                             const std::string& mailbox, bool& keep) {
    const Policy& p = *policy_;
    if (!state_) return std::nullopt;
    auto rate = p.storm_limit_for(mailbox);
    if (!rate || !p.storm_limit_for(bare)) return std::nullopt;
    auto [limit, window] = *rate;
    auto n = state_->hit("storm:" + ascii_lower(mailbox), clock_.now(), window);
    if (!n) return state_failure(n.error().message);
    if (*n <= limit) return std::nullopt;
    return apply(p.config().storm_action, "storm", raw, bare, "bounce-storm",
                 "more than " + std::to_string(limit) + " bounces to this address in " +
                     std::to_string(window) + "s",
                 keep);
}

std::optional<Decision> Session::replay_check(const std::string& raw, const std::string& bare,
                                              const std::string& domain, bool& keep) {
    const Policy& p = *policy_;
    const int limit = p.config().replay_limit;
    if (!state_ || limit <= 0) return std::nullopt;
    // A tag can come back only while it is valid, so count over its lifetime.
    const int days = p.is_srs_domain(domain) ? p.config().srs_max_age : p.config().batv_lifetime;
    auto n = state_->hit("replay:" + ascii_lower(bare), clock_.now(), UnixTime(days) * 86400);
    if (!n) return state_failure(n.error().message);
    if (*n <= std::uint64_t(limit)) return std::nullopt;
    return apply(p.config().replay_action, "replay", raw, bare, "bounce-replay",
                 "this signed address already brought back " + std::to_string(limit) +
                     (limit == 1 ? " bounce" : " bounces"),
                 keep);
}

std::optional<Decision> Session::state_failure(const std::string& why) {
    state_error_ = why;
    if (policy_->config().on_state_error != Action::tempfail) return std::nullopt;
    refused_check_ = "state-error";
    Decision d;
    d.step = Step::tempfail;
    d.code = "451";
    d.xcode = "4.3.0";
    d.text = "state store unavailable, try again later";
    return d;
}

std::optional<Decision> Session::unknown_check(const std::string& bare) {
    const int after = policy_->config().refuse_unknown_after;
    // Postfix cannot take a refusal of its own bounce's recipient (a configuration error).
    if (!state_ || after <= 0 || own_bounce_) return std::nullopt;
    auto r = state_->bounce(bare, clock_.now());
    if (!r) return state_failure(r.error().message);
    if (!*r || (*r)->count < std::uint64_t(after)) return std::nullopt;
    const BounceRecord& b = **r;
    count(Counter::rejected_unknown_recipient);
    refused_check_ = "unknown-recipient";
    return mailbox_refusal(
        bare, "this address was reported as non-existent by its own mail server (" +
                  std::to_string(b.count) + (b.count == 1 ? " hard bounce, " : " hard bounces, ") +
                  "last " + b.status + " " + b.reason + ")");
}

Decision Session::outbound_rcpt(const std::string& bare, const std::string& domain) {
    const Policy& p = *policy_;
    if (state_ && p.config().suppress_after > 0) {
        auto r = state_->bounce(bare, clock_.now());
        if (!r) {
            if (auto d = state_failure(r.error().message)) return *d;
        } else if (*r && (*r)->count >= std::uint64_t(p.config().suppress_after)) {
            const BounceRecord& b = **r;
            std::string why = "hard-bounced " + std::to_string(b.count) + " times (" + b.status +
                              " " + b.reason + ")";
            if (p.config().suppress_action == Action::reject) {
                count(Counter::suppressed);
                refused_check_ = "suppress";
                return mailbox_refusal(bare, why + "; not sent");
            }
            note(checks_, "suppress");
            tags_.push_back({bare, "suppressed; " + why});
        }
    }
    recipients_.push_back(bare);
    if (!p.is_local_domain(domain)) any_foreign_recipient_ = true;
    return Decision::proceed();
}

Decision Session::inbound_rcpt(const Address& a, const std::string& raw, const std::string& bare,
                               std::string& mailbox, bool& keep, bool loose) {
    const Policy& p = *policy_;
    const UnixTime now = clock_.now();
    const bool srs_domain = p.is_srs_domain(a.domain);
    const bool local = p.is_local_domain(a.domain);
    if (!srs_domain && !local) {
        keep = false;  // not ours: never storm-counted
        if (p.is_relay_domain(a.domain)) {
            if (auto pattern = p.exempt_recipient(bare)) {
                note(exempts_, "exempt-recipients:" + *pattern);
            } else if (auto refused = unknown_check(bare)) {
                return *refused;
            }
            relay_recipient_ = true;
        }
        recipients_.push_back(raw);
        return Decision::proceed();
    }
    if (auto pattern = p.exempt_recipient(bare)) {
        note(exempts_, "exempt-recipients:" + *pattern);
        return Decision::proceed();
    }
    if (local) {
        if (auto refused = unknown_check(bare)) {
            keep = false;
            return *refused;
        }
    }

    // A tag or SRS address is valid only as we wrote it; loosely read, it is unsigned.
    if (srs_domain && !loose && srs_decode_unverified(a.local).ok()) {
        SrsReversal r = reverse_srs(p, state_, bare, now);
        if (r.status == SrsReverseStatus::ok) {
            rewrites_.push_back({raw, r.address});
            mailbox = r.address;
            return Decision::proceed();
        }
        if (r.status == SrsReverseStatus::state_error) {
            // accept: the recipient stays as it came; no mailbox has that name.
            if (auto d = state_failure(r.why)) {
                keep = false;
                return *d;
            }
            return Decision::proceed();
        }
        if (own_bounce_) return Decision::proceed();  // see unknown_check
        // Never relay to the embedded address of a forged or stale SRS address, nor to
        // an alias we have no record of.
        const std::string check = r.status == SrsReverseStatus::unknown_alias
                                      ? std::string("bad-signature:unknown-alias")
                                      : bad_signature_check(r.error);
        return apply(p.config().bad_signature, check, raw, bare, "bad-signature", r.why, keep);
    }
    if (local && p.batv() && !loose) {
        BatvVerdict v = p.batv()->verify(bare, now);
        if (v.status == BatvStatus::valid) {
            rewrites_.push_back({raw, v.original});
            mailbox = v.original;
            return Decision::proceed();
        }
        if (v.status != BatvStatus::missing && !own_bounce_) {
            return apply(p.config().bad_signature, bad_signature_check(v.status), raw, bare,
                         "bad-signature", std::string("BATV tag ") + to_string(v.status), keep);
        }
    }
    const bool checks_unsigned = (local && p.batv()) || (srs_domain && !local);
    if (!checks_unsigned) return Decision::proceed();
    if (bounce_) {
        if (own_bounce_) return Decision::proceed();
        if (auto lp = p.check_localpart(a.local))
            return apply(lp->first, lp->second, raw, bare, lp->second, lp->second, keep);
        return apply(p.config().unsigned_bounce, "unsigned-bounce", raw, bare, "unsigned-bounce",
                     "bounce to an address we never used as a sender", keep);
    }
    unsigned_local_.push_back(bare);
    return Decision::proceed();
}

Decision Session::header(std::string_view name, std::string_view value) {
    int index = 1;
    bool counted = false;
    for (auto& [n, count] : header_counts_) {
        if (iequals(n, name)) {
            index = ++count;
            counted = true;
            break;
        }
    }
    if (!counted) header_counts_.emplace_back(std::string(name), 1);
    // Our verdict and watermark headers are ours alone to add.
    if (istarts_with(name, "X-Backstop-") || iequals(name, policy_->config().watermark_header)) {
        forged_.emplace_back(std::string(name), index);
    }
    if (iequals(name, "Message-ID") && message_id_.empty()) {
        std::size_t b = value.find_first_not_of(" \t\r\n");
        std::size_t e = value.find_last_not_of(" \t\r\n");
        if (b != std::string_view::npos) message_id_ = std::string(value.substr(b, e - b + 1));
    }
    if (direction_ == Direction::inbound) buffer_.add_header(name, value);
    return Decision::proceed();
}

Decision Session::end_of_headers() {
    if (direction_ == Direction::inbound) buffer_.end_of_headers();
    return Decision::proceed();
}

Decision Session::body(std::string_view chunk) {
    // Only an auto-reply candidate needs its body read, and only up to the cap.
    // Auto-reply candidates, and bounces of our mail when hard bounces are recorded,
    // need their body read, and only up to the cap.
    const bool autoreply_candidate = !unsigned_local_.empty() && !bounce_;
    const bool records_bounce = bounce_ && (!rewrites_.empty() || own_bounce_) && state_;
    if (direction_ == Direction::inbound && (autoreply_candidate || records_bounce))
        buffer_.add_body(chunk);
    return Decision::proceed();
}

void Session::remove_forged_headers(EndOfMessage& out) const {
    // Highest index first, so earlier removals do not shift later ones.
    for (auto it = forged_.rbegin(); it != forged_.rend(); ++it) {
        HeaderEdit e;
        e.kind = HeaderEdit::Kind::remove;
        e.name = it->first;
        e.index = it->second;
        out.header_edits.push_back(std::move(e));
    }
}

EndOfMessage Session::end_of_message(std::string_view queue_id) {
    EndOfMessage out =
        direction_ == Direction::outbound ? outbound_eom(queue_id) : inbound_eom(queue_id);
    if (metrics_) {
        count(direction_ == Direction::outbound ? Counter::messages_outbound
                                                : Counter::messages_inbound);
        count(Counter::recipients_reversed, rewrites_.size());
        for (const auto& h : out.header_edits) {
            if (h.kind == HeaderEdit::Kind::add && h.name == "X-Backstop-Result") {
                count(Counter::tagged);
                break;
            }
        }
    }
    reset_message();
    return out;
}

std::string Session::forward_sender(EndOfMessage& out, std::string& why,
                                    std::optional<SpfVerdict>& spf) {
    const Policy& p = *policy_;
    const UnixTime now = clock_.now();
    auto f = plan_srs_forward(p, sender_, now);
    // A DNS lookup only when SRS would change the sender.
    if (p.spf() && f && f->kind != SrsForwardKind::unchanged) spf = p.spf()->check(sender_, now);
    if (spf && !spf_needs_rewrite(*spf)) return "no-srs-needed";
    if (!f) {
        why = f.error().message;
        if (f.error().code == SrsErrc::too_long) count(Counter::srs_too_long);
        return "srs-refused";
    }
    if (f->kind == SrsForwardKind::unchanged) return "already-srs";
    // The alias is stored only now that the mail is forwarded with it.
    if (!f->alias.empty()) {
        auto stored = store_srs_alias(p, state_, *f, sender_, now);
        if (!stored) {
            why = "SRS alias not stored";
            if (auto fail = state_failure(stored.error().message)) {
                out.decision = *fail;
                note(checks_, "state-error");
            }
            return "srs-refused";
        }
        count(Counter::srs_aliases_written);
    }
    out.new_sender = f->address;
    count(Counter::srs_rewritten);
    if (!f->alias.empty()) return "srs0-alias";
    return f->kind == SrsForwardKind::srs1 ? "srs1" : "srs0";
}

EndOfMessage Session::outbound_eom(std::string_view queue_id) {
    EndOfMessage out;
    const Policy& p = *policy_;
    const UnixTime now = clock_.now();
    remove_forged_headers(out);
    // reason: one word for what happened to the sender; why: free text when refused.
    std::string reason = "unchanged", why;
    std::optional<SpfVerdict> spf;
    if (sender_null_) {
        reason = "null-sender";
    } else if (p.is_local_domain(domain_of(sender_))) {
        std::optional<std::string> exempt_domain;
        for (const auto& r : recipients_) {
            if (!exempt_domain) exempt_domain = p.batv_exempt_recipient_domain(domain_of(r));
        }
        if (!p.batv()) {
            reason = "batv-off";
        } else if (auto pattern = p.batv_exempt_sender(sender_)) {
            reason = "exempt";
            note(exempts_, "exempt-senders:" + *pattern);
        } else if (exempt_domain) {
            reason = "exempt";
            note(exempts_, "exempt-recipient-domains:" + *exempt_domain);
        } else if (parse_batv(sender_, p.config().batv_subaddress).ok()) {
            reason = "already-signed";
        } else if (auto s = p.batv()->sign(sender_, now)) {
            out.new_sender = *s;
            reason = "batv";
            count(Counter::batv_signed);
        }
    } else if (p.srs() && any_foreign_recipient_) {
        reason = forward_sender(out, why, spf);
    } else if (p.srs()) {
        reason = "all-recipients-local";
    }
    for (const auto& t : tags_) {
        out.header_edits.push_back({HeaderEdit::Kind::add, "X-Backstop-Result",
                                    t.result + "; rcpt=<" + printable(t.recipient) + ">", 1});
    }
    if (p.watermark() && p.config().watermark_enable) {
        HeaderEdit e;
        e.name = p.watermark()->header_name();
        e.value = p.watermark()->sign(sender_, message_id_, now);
        out.header_edits.push_back(std::move(e));
    }
    LogLine line = line_start(queue_id);
    if (out.new_sender) line.add("new-from", "<" + *out.new_sender + ">");
    const bool tempfail = out.decision.step == Step::tempfail;  // on-state-error
    line.add("rcpts", std::to_string(recipients_.size()))
        .add("verdict", tempfail        ? "tempfail"
                        : tags_.empty() ? "accept"
                                        : "tag")
        .add("reason", reason);
    if (spf) line.add("spf", to_string(*spf));
    line.add_list("check", checks_).add_list("exempt", exempts_);
    if (tempfail) {
        line.add_quoted("reply",
                        out.decision.code + " " + out.decision.xcode + " " + out.decision.text);
    }
    if (!why.empty()) line.add_quoted("why", why);
    if (!state_error_.empty()) line.add_quoted("state-error", state_error_);
    out.log_line = line.str();
    return out;
}

EndOfMessage Session::inbound_eom(std::string_view queue_id) {
    EndOfMessage out;
    const Policy& p = *policy_;
    remove_forged_headers(out);
    for (const auto& r : rewrites_) {
        if (r.routed_by_mta) continue;
        out.remove_recipients.push_back(r.as_given);
        out.add_recipients.push_back(r.original);
    }
    for (const auto& d : dropped_) out.remove_recipients.push_back(d);
    for (const auto& t : tags_) {
        out.header_edits.push_back({HeaderEdit::Kind::add, "X-Backstop-Result",
                                    t.result + "; rcpt=<" + printable(t.recipient) + ">", 1});
    }
    // reason: what kind of message it is; the checks and exemptions that decided go
    // in check= and exempt=.
    std::string verdict = "accept", reason = bounce_ ? "bounce" : "mail";
    std::optional<WatermarkStatus> watermark;
    if (!dropped_.empty() && dropped_.size() == recipients_.size()) {
        out.decision.step = Step::discard;
        verdict = "discard";
    }
    // Mail relayed to a [domains] relay domain is forwarded mail: its foreign sender
    // gets SRS, as the socketmap's forward map gives it (a local sender does not).
    std::string srs, why;
    std::optional<SpfVerdict> spf;
    if (relay_recipient_ && !sender_null_ && p.srs() && !p.is_local_domain(domain_of(sender_)) &&
        out.decision.step == Step::proceed)
        srs = forward_sender(out, why, spf);
    const bool own_report = own_bounce_ && !recipients_.empty();
    if (bounce_ && (!rewrites_.empty() || own_report) && state_) {
        ClassifyOptions o;
        o.max_bytes = p.config().classify_max_bytes;
        // Postfix's reverse map may have rewritten our own bounce's recipient already.
        o.envelope_recipient =
            !rewrites_.empty() ? rewrites_.front().as_given : recipients_.front();
        o.now = clock_.now();
        record_hard_bounces(p.classifier().classify(buffer_.view(), o));
    }
    if (!unsigned_local_.empty() && !bounce_ && out.decision.step == Step::proceed) {
        ClassifyOptions o;
        o.max_bytes = p.config().classify_max_bytes;
        o.watermark = p.watermark();
        o.now = clock_.now();
        // The watermark check needs the original's sender; a returned original often
        // lacks Return-Path, and then this recipient (our sender) is the best witness.
        o.envelope_recipient = unsigned_local_.front();
        Classification c = p.classifier().classify(buffer_.view(), o);
        if (c.kind != MessageKind::none) reason = to_string(c.kind);
        if (c.kind != MessageKind::none && c.kind != MessageKind::feedback)
            watermark = c.original.watermark;
        switch (c.kind) {
            case MessageKind::dsn:
                count(Counter::classified_dsn);
                break;
            case MessageKind::autoreply:
                count(Counter::classified_autoreply);
                break;
            case MessageKind::challenge:
                count(Counter::classified_challenge);
                break;
            case MessageKind::feedback:
                count(Counter::classified_feedback);
                break;
            case MessageKind::none:
                count(Counter::classified_none);
                break;
        }
        if (c.kind != MessageKind::none && c.kind != MessageKind::feedback) {
            switch (c.original.watermark) {
                case WatermarkStatus::valid:
                    count(Counter::watermark_valid);
                    break;
                case WatermarkStatus::invalid:
                    count(Counter::watermark_invalid);
                    break;
                case WatermarkStatus::expired:
                    count(Counter::watermark_expired);
                    break;
                case WatermarkStatus::absent:
                    count(Counter::watermark_absent);
                    break;
            }
        }
        if (c.kind != MessageKind::none && c.kind != MessageKind::feedback && state_ &&
            p.storm_limits_used()) {
            // Auto-replies count toward the same storm limit as bounces.
            for (const auto& r : unsigned_local_) {
                auto rate = p.storm_limit_for(r);
                if (!rate) continue;
                auto n = state_->hit("storm:" + ascii_lower(r), clock_.now(), rate->second);
                if (!n) {
                    if (auto fail = state_failure(n.error().message)) {
                        out.decision = *fail;
                        note(checks_, "state-error");
                    }
                    break;
                }
                if (*n > rate->first) {
                    // At end of message the recipient list is settled: a tag becomes a
                    // header now and a discard drops the message.
                    const Action act = p.config().storm_action;
                    if (act == Action::reject || act == Action::tempfail) {
                        count(Counter::rejected_storm);
                        out.decision =
                            reject_reply(act, r, "too many auto-replies to this address");
                    } else if (act == Action::tag) {
                        out.header_edits.push_back({HeaderEdit::Kind::add, "X-Backstop-Result",
                                                    "bounce-storm; rcpt=<" + printable(r) + ">",
                                                    1});
                        verdict = "tag";
                    } else if (act == Action::discard) {
                        count(Counter::discarded);
                        out.decision.step = Step::discard;
                        verdict = "discard";
                    }
                    note(checks_, "storm");
                    break;
                }
            }
        }
        if (c.kind != MessageKind::none && c.kind != MessageKind::feedback &&
            out.decision.step == Step::proceed) {
            std::string kind(to_string(c.kind));
            if (c.original.watermark != WatermarkStatus::valid) {
                std::string why = kind + " to an unsigned address, watermark " +
                                  std::string(to_string(c.original.watermark));
                note(checks_, "unsigned-autoreply");
                switch (p.config().unsigned_autoreply) {
                    case Action::reject:
                    case Action::tempfail:
                        count(Counter::rejected_autoreply);
                        out.decision = reject_reply(p.config().unsigned_autoreply,
                                                    unsigned_local_.front(), why);
                        verdict = to_string(p.config().unsigned_autoreply);
                        break;
                    case Action::tag:
                        out.header_edits.push_back(
                            {HeaderEdit::Kind::add, "X-Backstop-Result",
                             "unsigned-autoreply; kind=" + kind +
                                 "; watermark=" + std::string(to_string(c.original.watermark)),
                             1});
                        verdict = "tag";
                        break;
                    case Action::discard:
                        out.decision.step = Step::discard;
                        verdict = "discard";
                        break;
                    case Action::accept:
                        break;
                }
            }
        }
    }
    if (!tags_.empty() && verdict == "accept") verdict = "tag";
    if (out.decision.step == Step::reject || out.decision.step == Step::tempfail) {
        verdict = out.decision.step == Step::reject ? "reject" : "tempfail";
    }
    LogLine line = line_start(queue_id);
    if (out.new_sender) line.add("new-from", "<" + *out.new_sender + ">");
    line.add("rcpts", std::to_string(recipients_.size()))
        .add("rewritten", std::to_string(rewrites_.size()));
    const auto by_mta = std::count_if(rewrites_.begin(), rewrites_.end(),
                                      [](const Rewrite& r) { return r.routed_by_mta; });
    if (by_mta > 0) line.add("mta-routed", std::to_string(by_mta));
    line.add("verdict", verdict).add("reason", reason);
    if (!srs.empty()) line.add("srs", srs);
    if (spf) line.add("spf", to_string(*spf));
    if (watermark) line.add("watermark", to_string(*watermark));
    line.add_list("check", checks_).add_list("exempt", exempts_);
    if (!out.decision.code.empty()) {
        line.add_quoted("reply",
                        out.decision.code + " " + out.decision.xcode + " " + out.decision.text);
    }
    if (!why.empty()) line.add_quoted("why", why);
    if (!state_error_.empty()) line.add_quoted("state-error", state_error_);
    out.log_line = line.str();
    return out;
}

void Session::record_hard_bounces(const Classification& c) {
    if (c.kind != MessageKind::dsn) return;
    for (const BounceRecipient* r : c.failed_recipients()) {
        if (!r->hard || r->address.empty()) continue;
        auto ok = state_->record_bounce(r->address, r->status, r->reason, clock_.now());
        if (!ok) {
            state_error_ = ok.error().message;
            return;
        }
        count(Counter::hard_bounces_recorded);
    }
}

}  // namespace backstop
