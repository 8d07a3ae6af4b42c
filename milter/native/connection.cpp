#include "connection.hpp"

#include <chrono>
#include <exception>

#include "engine.hpp"
#include "log.hpp"
#include "replies.hpp"

namespace backstop::milter {

namespace {

namespace action = proto::action;
namespace step = proto::step;

// What backstop may change at end of message.
constexpr std::uint32_t kActionsWanted = action::change_from | action::add_rcpt | action::del_rcpt |
                                         action::add_headers | action::change_headers;

// Steps we skip or do not answer. header, end of headers and body never refuse
// anything (the verdict comes at end of message), and connect always goes on, so
// the MTA need not wait for those answers: fewer round trips for every message.
constexpr std::uint32_t kStepsWanted = step::no_helo | step::no_unknown | step::no_data |
                                       step::no_reply_connect | step::no_reply_header |
                                       step::no_reply_eoh | step::no_reply_body;

// What an offer of none means, as libmilter reads it: version 1's actions (add
// headers, change body, add and delete recipients) and steps (connect, HELO, MAIL,
// RCPT, body and headers may be skipped).
constexpr std::uint32_t kVersion1Actions = 0x0f;
constexpr std::uint32_t kVersion1Steps = 0x3f;

std::string printable_command(char c) {
    if (c >= 0x21 && c < 0x7f) return std::string(1, c);
    static constexpr char kHex[] = "0123456789abcdef";
    auto u = static_cast<unsigned char>(c);
    return std::string("\\x") + kHex[u >> 4] + kHex[u & 15];
}

}  // namespace

Connection::Connection(const PolicyHolder& holder, Metrics& metrics, const Clock& clock)
    : holder_(holder), metrics_(metrics), clock_(clock) {}

bool Connection::may_block(char command) const {
    return blocking_backends_ &&
           (command == proto::cmd::rcpt || command == proto::cmd::end_of_message);
}

void Connection::handle(const proto::Packet& p, std::string& out) {
    if (finished_) return;
    if (!negotiated_ && p.command != proto::cmd::negotiate) {
        log(LogLevel::warning, "protocol error: command '" + printable_command(p.command) +
                                   "' before negotiation, closing the connection");
        finished_ = true;
        return;
    }
    try {
        switch (p.command) {
            case proto::cmd::negotiate:
                negotiate(p.data, out);
                return;
            case proto::cmd::macro:
                store_macros(p.data);
                return;
            case proto::cmd::connect:
                forget_later_macros(p.command);
                connect(p.data, out);
                return;
            case proto::cmd::helo: {
                forget_later_macros(p.command);
                if (!session_) break;
                auto args = proto::split_strings(p.data);
                answer(session_->helo(args.empty() ? std::string_view() : args[0]), out);
                return;
            }
            case proto::cmd::mail: {
                forget_later_macros(p.command);
                if (!session_) break;
                auto args = proto::split_strings(p.data);
                in_message_ = true;
                answer(session_->mail(args.empty() ? std::string_view() : args[0],
                                      macro("{auth_authen}")),
                       out);
                return;
            }
            case proto::cmd::rcpt: {
                forget_later_macros(p.command);
                if (!session_) break;
                auto args = proto::split_strings(p.data);
                std::string_view rcpt = args.empty() ? std::string_view() : args[0];
                // Postfix knows the queue ID at RCPT only once a recipient was accepted;
                // Sendmail and Postfix's local submissions know it from MAIL on.
                // Sendmail tells where it has routed the recipient (its reverse map may
                // have resolved a tag already); Postfix's {rcpt_addr} is the address given.
                const std::string mailer = macro("{rcpt_mailer}"), host = macro("{rcpt_host}"),
                                  addr = macro("{rcpt_addr}");
                Decision d = session_->rcpt(rcpt, macro("i"), MtaRoute{mailer, host, addr});
                if (!d.log_line.empty()) log(LogLevel::info, d.log_line);
                answer(d, out);
                return;
            }
            case proto::cmd::data:
                answer(Decision::proceed(), out);
                return;
            case proto::cmd::header: {
                if (!session_) break;
                auto args = proto::split_strings(p.data);
                answer(session_->header(args.empty() ? std::string_view() : args[0],
                                        args.size() < 2 ? std::string_view() : args[1]),
                       out, step::no_reply_header);
                return;
            }
            case proto::cmd::end_of_headers:
                if (!session_) break;
                answer(session_->end_of_headers(), out, step::no_reply_eoh);
                return;
            case proto::cmd::body:
                if (!session_) break;
                answer(session_->body(p.data), out, step::no_reply_body);
                return;
            case proto::cmd::end_of_message:
                if (!session_) break;
                end_of_message(p.data, out);
                return;
            case proto::cmd::abort:
                in_message_ = false;
                if (session_) session_->abort();
                return;
            case proto::cmd::quit:
                finished_ = true;
                return;
            case proto::cmd::quit_new_connection:
                // The MTA reuses this socket for its next SMTP connection.
                session_.reset();
                state_.reset();
                macros_.clear();
                in_message_ = false;
                return;
            case proto::cmd::unknown:
                answer(Decision::proceed(), out);
                return;
            default:
                log(LogLevel::warning, "protocol error: unknown command '" +
                                           printable_command(p.command) +
                                           "', closing the connection");
                finished_ = true;
                return;
        }
        // A command that needs the session came without a connect before it.
        internal_error(p.command, "no connection state", out);
    } catch (const std::exception& e) {
        internal_error(p.command, e.what(), out);
    } catch (...) {
        internal_error(p.command, "unknown exception", out);
    }
}

void Connection::negotiate(std::string_view data, std::string& out) {
    auto offer = proto::parse_offer(data);
    if (!offer || offer->version < 2) {
        log(LogLevel::warning, "protocol error: bad negotiation from the MTA, closing");
        finished_ = true;
        return;
    }
    // An offer of no actions or no steps means version 1's sets, as libmilter reads it
    // (SMFI_V1_ACTS, SMFI_V1_PROT); found by the differential test.
    if (offer->actions == 0) offer->actions = kVersion1Actions;
    if (offer->steps == 0) offer->steps = kVersion1Steps;
    if ((offer->actions & kActionsWanted) != kActionsWanted) {
        log(LogLevel::warning,
            "the MTA does not offer every action backstop uses (milter_protocol = 6?); "
            "messages it would change are tempfailed");
    }
    agreement_ = proto::Agreement{};
    agreement_.version = std::min(offer->version, proto::kVersion);
    agreement_.actions = offer->actions & (kActionsWanted | action::set_symbol_list);
    agreement_.steps = offer->steps & kStepsWanted;
    // Ask only for the macros we read: Postfix sends each macro list as a packet of
    // its own before the command it belongs to.
    // In stage order, whatever the version, as libmilter sends them.
    if (agreement_.actions & action::set_symbol_list) {
        using proto::Stage;
        agreement_.symbols = {{Stage::connect, ""},
                              {Stage::helo, ""},
                              {Stage::mail, kMailMacros},
                              {Stage::rcpt, kRcptMacros},
                              {Stage::data, ""},
                              {Stage::eom, kEomMacros},
                              {Stage::eoh, ""}};
    }
    proto::append_agreement(out, agreement_);
    negotiated_ = true;
}

void Connection::connect(std::string_view data, std::string& out) {
    auto info = proto::parse_connect(data);
    if (!info) {
        // Malformed: no session, so every later command of this connection tempfails.
        internal_error(proto::cmd::connect, "malformed connect packet", out);
        return;
    }
    auto policy = holder_.get();
    if (!policy) {
        internal_error(proto::cmd::connect, "no configuration", out);
        return;
    }
    const Config& c = policy->config();
    blocking_backends_ = may_wait_on_lookups(c);
    state_ = holder_.state();
    session_ = std::make_unique<Session>(std::move(policy), clock_);
    session_->set_metrics(&metrics_);
    session_->set_state(state_.get());
    in_message_ = false;
    answer(session_->connect(info->hostname, info->address,
                             client_kind(info->family, info->port, info->address, info->hostname)),
           out, step::no_reply_connect);
}

void Connection::store_macros(std::string_view data) {
    if (data.empty()) return;
    const char command = data[0];
    auto strings = proto::split_strings(data.substr(1));
    std::vector<std::pair<std::string, std::string>> list;
    for (std::size_t i = 0; i + 1 < strings.size(); i += 2) {
        list.emplace_back(std::string(strings[i]), std::string(strings[i + 1]));
    }
    for (auto it = macros_.begin(); it != macros_.end(); ++it) {
        if (it->first == command) {
            macros_.erase(it);
            break;
        }
    }
    macros_.emplace(macros_.begin(), command, std::move(list));
}

// The macros of a later stage belong to an earlier message or connection: the
// queue id (asked for at end of message only) of the message before must not name
// this one's refusals, nor an earlier client's {auth_authen} make this one
// outbound. Stage order as libmilter's: connect, HELO, MAIL, RCPT, DATA, EOM, EOH.
void Connection::forget_later_macros(char command) {
    static constexpr std::string_view kStages = "CHMRTEN";
    const std::size_t stage = kStages.find(command);
    if (stage == std::string_view::npos) return;
    std::erase_if(macros_, [&](const auto& m) {
        const std::size_t s = kStages.find(m.first);
        return s != std::string_view::npos && s > stage;
    });
}

std::string Connection::macro(std::string_view name) const {
    // "{auth_authen}" may come as "auth_authen" from some MTAs.
    std::string_view bare = name;
    if (bare.size() > 2 && bare.front() == '{' && bare.back() == '}')
        bare = bare.substr(1, bare.size() - 2);
    for (const auto& [command, list] : macros_) {
        for (const auto& [n, v] : list) {
            if (n == name || n == bare) return v;
        }
    }
    return {};
}

std::string Connection::queue_id() const {
    std::string id = macro("i");
    return id.empty() ? "NOQUEUE" : id;
}

void Connection::answer(const Decision& d, std::string& out, std::uint32_t no_reply_flag) {
    if (no_reply_flag && (agreement_.steps & no_reply_flag)) {
        // No answer may be sent. Nothing answered this way refuses anything
        // (see kStepsWanted); should it ever, the message is refused at its end.
        if (d.step != Step::proceed) {
            log(LogLevel::error, "a step without reply wanted to refuse; ignored");
        }
        return;
    }
    switch (d.step) {
        case Step::proceed:
            proto::append_packet(out, proto::reply::continue_);
            return;
        case Step::accept:
            in_message_ = false;
            proto::append_packet(out, proto::reply::accept);
            return;
        case Step::discard:
            in_message_ = false;
            proto::append_packet(out, proto::reply::discard);
            return;
        case Step::reject:
        case Step::tempfail:
            if (d.code.empty()) {
                proto::append_packet(
                    out, d.step == Step::reject ? proto::reply::reject : proto::reply::tempfail);
            } else {
                proto::append_reply_code(out, d.code, d.xcode, reply_text(d.text));
            }
            return;
    }
}

void Connection::internal_error(char command, const char* what, std::string& out) {
    metrics_.add(Counter::errors);
    const std::string where = "command '" + printable_command(command) + "'";
    switch (command) {
        case proto::cmd::connect:
        case proto::cmd::helo:
        case proto::cmd::mail:
        case proto::cmd::rcpt:
        case proto::cmd::data:
        case proto::cmd::header:
        case proto::cmd::end_of_headers:
        case proto::cmd::body:
        case proto::cmd::end_of_message:
        case proto::cmd::unknown: {
            const std::uint32_t flag = command == proto::cmd::connect  ? step::no_reply_connect
                                       : command == proto::cmd::header ? step::no_reply_header
                                       : command == proto::cmd::end_of_headers ? step::no_reply_eoh
                                       : command == proto::cmd::body           ? step::no_reply_body
                                                                               : 0;
            if (flag && (agreement_.steps & flag)) {
                // No answer allowed here: the session is dropped, so the next MAIL,
                // RCPT or end of message is the one that tempfails.
                log(LogLevel::error,
                    where + ": internal error (" + what + "); the message will be tempfailed");
                session_.reset();
                return;
            }
            log(LogLevel::error, where + ": internal error, tempfail: " + what);
            if (command == proto::cmd::end_of_message) in_message_ = false;
            answer(internal_error_reply(), out);
            return;
        }
        default:
            log(LogLevel::error, where + ": internal error, closing the connection: " + what);
            finished_ = true;
            return;
    }
}

// Applies the end-of-message actions; any that the MTA did not allow tempfails the
// whole message so it is kept and retried: never accept a message we could not fix.
void Connection::end_of_message(std::string_view data, std::string& out) {
    // The last body chunk may come with the end of message.
    if (!data.empty()) session_->body(data);
    const std::string qid = queue_id();
    auto started = std::chrono::steady_clock::now();
    EndOfMessage eom = session_->end_of_message(qid);
    metrics_.observe_latency_us(std::uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                                                  std::chrono::steady_clock::now() - started)
                                                  .count()));
    in_message_ = false;
    std::string mods;
    bool ok = true;
    for (const Modification& m : modifications(eom)) {
        using Kind = Modification::Kind;
        if ((agreement_.actions & m.action()) != m.action()) {
            log(LogLevel::error, qid + ": " + m.describe() + " not allowed by the MTA, tempfail");
            ok = false;
            break;
        }
        switch (m.kind) {
            case Kind::change_from:
                proto::append_strings_packet(mods, proto::reply::change_from, {m.name});
                break;
            case Kind::remove_recipient:
                proto::append_strings_packet(mods, proto::reply::del_rcpt, {m.name});
                break;
            case Kind::add_recipient:
                proto::append_strings_packet(mods, proto::reply::add_rcpt, {m.name});
                break;
            case Kind::add_header:
                proto::append_strings_packet(mods, proto::reply::add_header, {m.name, m.value});
                break;
            case Kind::remove_header:
                proto::append_change_header(mods, std::uint32_t(m.index), m.name, "");
                break;
        }
    }
    log(LogLevel::info, eom.log_line);
    if (!ok) {
        metrics_.add(Counter::errors);
        answer(changes_not_allowed(), out);
        return;
    }
    out.append(mods);
    answer(eom.decision, out);
}

}  // namespace backstop::milter
