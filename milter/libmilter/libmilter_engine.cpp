// The libmilter engine: Sendmail's libmilter speaks the protocol, a thread per MTA
// connection, and each callback is a few lines into the same Session the native
// engine drives. The replies and the end-of-message changes come from replies.hpp,
// so both engines answer alike (tests/protocol runs on both; the differential test
// compares them). No exception reaches libmilter: a failure tempfails.
//
// libmilter is one per process and its callbacks carry no user pointer: the engine
// lives in a static.
#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "notify.hpp"
#include "replies.hpp"

namespace backstop::milter {

namespace {

// What one MTA connection holds between callbacks (smfi_setpriv).
struct Conn {
    std::shared_ptr<StateStore> state;  // alive as long as the session that uses it
    std::unique_ptr<Session> session;
    bool in_message = false;
};

class LibmilterEngine;
LibmilterEngine* g_engine = nullptr;

class LibmilterEngine final : public Engine {
  public:
    LibmilterEngine(const PolicyHolder& holder, Metrics& metrics, const Clock& clock, int grace)
        : holder_(holder), metrics_(metrics), clock_(clock), grace_(grace) {}

    std::string open(const std::string& socket_spec) override;
    void serve() override;
    // libmilter (Debian's, with its worker pool) drops the sessions open when it
    // stops: first let the messages under way end, new ones tempfailed meanwhile.
    void stop() override;

    // The callbacks' work, in the engine so that they reach the holder and metrics.
    sfsistat connect(SMFICTX* ctx, const char* hostname, const sockaddr* addr);
    sfsistat mail(SMFICTX* ctx, char** argv);
    sfsistat rcpt(SMFICTX* ctx, char** argv);
    sfsistat end_of_message(SMFICTX* ctx);
    void message_done(Conn* c);
    Metrics& metrics() { return metrics_; }

  private:
    template <class F>
    EndOfMessage with_progress(SMFICTX* ctx, F f);

    const PolicyHolder& holder_;
    Metrics& metrics_;
    const Clock& clock_;
    const int grace_;
    std::atomic<int> in_message_{0};
    std::atomic<bool> stopping_{false};
};

// libmilter writes each end-of-message change as its own packet. With Nagle on, the
// final reply waits for the MTA's delayed ACK of the one before it: 40 ms a message
// that backstop changes (scripts/bench-milter measured it). libmilter has no hook on
// its sockets, so find the listening socket it opened on our port and set
// TCP_NODELAY there: Linux hands it down to every accepted connection.
void disable_nagle(const std::string& socket_spec) {
    ListenSpec spec;
    std::string error;
    if (!parse_listen_spec(socket_spec, spec, error) || spec.kind == ListenSpec::Kind::unix_path)
        return;
    for (int fd = 0; fd < 1024; ++fd) {
        int listening = 0;
        socklen_t len = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
            continue;
        sockaddr_storage addr{};
        len = sizeof addr;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
        std::uint16_t port = 0;
        if (addr.ss_family == AF_INET)
            port = ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
        else if (addr.ss_family == AF_INET6)
            port = ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
        if (port != spec.port) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

Conn* conn_of(SMFICTX* ctx) {
    return static_cast<Conn*>(smfi_getpriv(ctx));
}

// What each MTA connection agreed at negotiation, by libmilter's context: it
// outlives our Conn across QUIT_NC (close, then a new connect on the same context).
// A context freed by libmilter leaves its entry until the address is reused.
struct Agreed {
    unsigned long offered_steps = 0;  // what the MTA offered
    unsigned long actions = 0;        // what we asked for of what it offered
};
std::mutex g_offers_mutex;
std::unordered_map<const SMFICTX*, Agreed> g_agreed;

Agreed agreed(SMFICTX* ctx) {
    std::lock_guard<std::mutex> lock(g_offers_mutex);
    auto it = g_agreed.find(ctx);
    return it != g_agreed.end() ? it->second : Agreed{};
}

// The answer of a step backstop never refuses: none when no-reply (NR_*) was agreed
// for it, "continue" otherwise. libmilter adds the NR_* flags to what it passes to
// negotiate_cb even for an MTA that lacks them (it then sends that MTA's "continue"
// itself), so in practice this is "no reply"; asking per step keeps a NOREPLY from
// ever going out on a step where none was agreed.
sfsistat no_reply(SMFICTX* ctx, unsigned long nr_step) {
    return agreed(ctx).offered_steps & nr_step ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

std::string symbol(SMFICTX* ctx, const char* name) {
    const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
    return v ? v : "";
}

std::string queue_id(SMFICTX* ctx) {
    std::string id = symbol(ctx, "i");
    return id.empty() ? "NOQUEUE" : id;
}

// A decision as libmilter's answer: the reply text (reply_text()) goes with it.
sfsistat answer(SMFICTX* ctx, const Decision& d) {
    switch (d.step) {
        case Step::proceed:
            return SMFIS_CONTINUE;
        case Step::accept:
            return SMFIS_ACCEPT;
        case Step::discard:
            return SMFIS_DISCARD;
        case Step::reject:
        case Step::tempfail:
            if (!d.code.empty()) {
                const std::string text = reply_text(d.text);
                if (smfi_setreply(ctx, const_cast<char*>(d.code.c_str()),
                                  const_cast<char*>(d.xcode.c_str()),
                                  const_cast<char*>(text.c_str())) != MI_SUCCESS) {
                    log(LogLevel::error, "libmilter refused the reply " + d.code + " " + d.xcode);
                }
            }
            return d.step == Step::reject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
    }
    return SMFIS_TEMPFAIL;
}

// A callback that failed inside backstop: on a step the MTA waits for, a tempfail;
// where it waits for nothing (no_reply), the session is dropped so that the next
// command that is answered tempfails, as the native engine does.
sfsistat failed(SMFICTX* ctx, const char* where, const std::string& what, unsigned long nr_step) {
    if (g_engine) g_engine->metrics().add(Counter::errors);
    if (nr_step != 0) {
        log(LogLevel::error,
            std::string(where) + ": internal error (" + what + "); the message will be tempfailed");
        if (Conn* c = conn_of(ctx)) c->session.reset();
        return no_reply(ctx, nr_step);
    }
    log(LogLevel::error, std::string(where) + ": internal error, tempfail: " + what);
    return answer(ctx, internal_error_reply());
}

template <class F>
sfsistat guarded(SMFICTX* ctx, const char* where, unsigned long nr_step, F f) {
    try {
        return f();
    } catch (const std::exception& e) {
        return failed(ctx, where, e.what(), nr_step);
    } catch (...) {
        return failed(ctx, where, "unknown exception", nr_step);
    }
}

// The session of a command that needs one; null (and a tempfail) when a connect
// failed or an earlier failure dropped it.
Session* session_of(SMFICTX* ctx) {
    Conn* c = conn_of(ctx);
    return c ? c->session.get() : nullptr;
}

sfsistat negotiate_cb(SMFICTX* ctx, unsigned long actions, unsigned long steps, unsigned long,
                      unsigned long, unsigned long* want_actions, unsigned long* want_steps,
                      unsigned long* f2, unsigned long* f3) {
    constexpr unsigned long kActions =
        SMFIF_CHGFROM | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_ADDHDRS | SMFIF_CHGHDRS;
    if ((actions & kActions) != kActions) {
        log(LogLevel::warning,
            "the MTA does not offer every action backstop uses (milter_protocol = 6?); "
            "messages it would change are tempfailed");
    }
    *want_actions = actions & (kActions | SMFIF_SETSYMLIST);
    // Skipped when the MTA can; never answered at connect, header, end of headers and
    // body (libmilter answers "continue" itself to an MTA that waits for it).
    *want_steps = (steps & (SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA)) | SMFIP_NR_CONN |
                  SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;
    *f2 = 0;
    *f3 = 0;
    {
        std::lock_guard<std::mutex> lock(g_offers_mutex);
        g_agreed[ctx] = Agreed{steps, *want_actions};
    }
    // The macros backstop reads, none at the other stages: the same lists as the
    // native engine's, so that the MTA sends the same.
    if (*want_actions & SMFIF_SETSYMLIST) {
        smfi_setsymlist(ctx, SMFIM_CONNECT, const_cast<char*>(""));
        smfi_setsymlist(ctx, SMFIM_HELO, const_cast<char*>(""));
        smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>(kMailMacros));
        smfi_setsymlist(ctx, SMFIM_ENVRCPT, const_cast<char*>(kRcptMacros));
        smfi_setsymlist(ctx, SMFIM_DATA, const_cast<char*>(""));
        smfi_setsymlist(ctx, SMFIM_EOM, const_cast<char*>(kEomMacros));
        smfi_setsymlist(ctx, SMFIM_EOH, const_cast<char*>(""));
    }
    return SMFIS_CONTINUE;
}

sfsistat connect_cb(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
    return guarded(ctx, "connect", SMFIP_NR_CONN, [&] {
        return g_engine->connect(ctx, hostname, reinterpret_cast<sockaddr*>(addr));
    });
}

sfsistat helo_cb(SMFICTX* ctx, char* name) {
    return guarded(ctx, "helo", 0, [&] {
        Session* s = session_of(ctx);
        if (!s) return failed(ctx, "helo", "no connection state", 0);
        return answer(ctx, s->helo(name ? name : ""));
    });
}

sfsistat mail_cb(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "mail", 0, [&] { return g_engine->mail(ctx, argv); });
}

sfsistat rcpt_cb(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "rcpt", 0, [&] { return g_engine->rcpt(ctx, argv); });
}

sfsistat data_cb(SMFICTX*) {
    return SMFIS_CONTINUE;
}

sfsistat unknown_cb(SMFICTX*, const char*) {
    return SMFIS_CONTINUE;
}

sfsistat header_cb(SMFICTX* ctx, char* name, char* value) {
    return guarded(ctx, "header", SMFIP_NR_HDR, [&] {
        Session* s = session_of(ctx);
        if (!s) return no_reply(ctx, SMFIP_NR_HDR);  // the end of message tempfails
        s->header(name ? name : "", value ? value : "");
        return no_reply(ctx, SMFIP_NR_HDR);
    });
}

sfsistat eoh_cb(SMFICTX* ctx) {
    return guarded(ctx, "end of headers", SMFIP_NR_EOH, [&] {
        if (Session* s = session_of(ctx)) s->end_of_headers();
        return no_reply(ctx, SMFIP_NR_EOH);
    });
}

sfsistat body_cb(SMFICTX* ctx, unsigned char* data, size_t len) {
    return guarded(ctx, "body", SMFIP_NR_BODY, [&] {
        if (Session* s = session_of(ctx))
            s->body(std::string_view(reinterpret_cast<const char*>(data), len));
        return no_reply(ctx, SMFIP_NR_BODY);
    });
}

sfsistat eom_cb(SMFICTX* ctx) {
    return guarded(ctx, "end of message", 0, [&] { return g_engine->end_of_message(ctx); });
}

sfsistat abort_cb(SMFICTX* ctx) {
    try {
        if (Conn* c = conn_of(ctx)) {
            if (c->session) c->session->abort();
            g_engine->message_done(c);
        }
    } catch (const std::exception& e) {
        log(LogLevel::error, std::string("abort: internal error: ") + e.what());
    }
    return SMFIS_CONTINUE;
}

sfsistat close_cb(SMFICTX* ctx) {
    Conn* c = conn_of(ctx);
    if (c) {
        g_engine->message_done(c);
        smfi_setpriv(ctx, nullptr);
        delete c;
    }
    return SMFIS_CONTINUE;
}

// The family, port and address as the native engine reads them from the packet.
void describe(const sockaddr* a, char& family, std::uint16_t& port, std::string& address) {
    family = 'U';
    port = 0;
    address.clear();
    if (!a) return;
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(a);
        family = '4';
        port = ntohs(in->sin_port);
        if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf)) address = buf;
    } else if (a->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(a);
        family = '6';
        port = ntohs(in6->sin6_port);
        if (inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf)) address = buf;
    } else if (a->sa_family == AF_UNIX) {
        family = 'L';
        address = reinterpret_cast<const sockaddr_un*>(a)->sun_path;
    }
}

sfsistat LibmilterEngine::connect(SMFICTX* ctx, const char* hostname, const sockaddr* addr) {
    Conn* c = conn_of(ctx);
    if (!c) {
        c = new Conn;
        smfi_setpriv(ctx, c);
    }
    c->session.reset();
    c->state.reset();
    auto policy = holder_.get();
    if (!policy) return failed(ctx, "connect", "no configuration", SMFIP_NR_CONN);
    c->state = holder_.state();
    c->session = std::make_unique<Session>(std::move(policy), clock_);
    c->session->set_metrics(&metrics_);
    c->session->set_state(c->state.get());
    char family;
    std::uint16_t port;
    std::string address;
    describe(addr, family, port, address);
    const std::string host = hostname ? hostname : "";
    c->session->connect(host, address, client_kind(family, port, address, host));
    return no_reply(ctx, SMFIP_NR_CONN);
}

sfsistat LibmilterEngine::mail(SMFICTX* ctx, char** argv) {
    Conn* c = conn_of(ctx);
    if (!c || !c->session) return failed(ctx, "mail", "no connection state", 0);
    if (stopping_) {
        return answer(ctx, tempfail_451("4.3.2", "backstop-milter is stopping, try again later"));
    }
    if (!c->in_message) {
        c->in_message = true;
        ++in_message_;
    }
    return answer(ctx,
                  c->session->mail(argv && argv[0] ? argv[0] : "", symbol(ctx, "{auth_authen}")));
}

sfsistat LibmilterEngine::rcpt(SMFICTX* ctx, char** argv) {
    Session* s = session_of(ctx);
    if (!s) return failed(ctx, "rcpt", "no connection state", 0);
    const std::string mailer = symbol(ctx, "{rcpt_mailer}"), host = symbol(ctx, "{rcpt_host}"),
                      addr = symbol(ctx, "{rcpt_addr}");
    Decision d =
        s->rcpt(argv && argv[0] ? argv[0] : "", symbol(ctx, "i"), MtaRoute{mailer, host, addr});
    if (!d.log_line.empty()) log(LogLevel::info, d.log_line);
    return answer(ctx, d);
}

sfsistat LibmilterEngine::end_of_message(SMFICTX* ctx) {
    Conn* c = conn_of(ctx);
    if (!c || !c->session) {
        if (c) message_done(c);
        return failed(ctx, "end of message", "no connection state", 0);
    }
    struct Done {  // the message is over however this returns
        LibmilterEngine* e;
        Conn* c;
        ~Done() { e->message_done(c); }
    } done{this, c};
    const std::string qid = queue_id(ctx);
    const auto started = std::chrono::steady_clock::now();
    EndOfMessage eom = may_wait_on_lookups(c->session->policy().config())
                           ? with_progress(ctx, [&] { return c->session->end_of_message(qid); })
                           : c->session->end_of_message(qid);
    metrics_.observe_latency_us(std::uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                                                  std::chrono::steady_clock::now() - started)
                                                  .count()));
    log(LogLevel::info, eom.log_line);
    const std::vector<Modification> changes = modifications(eom);
    // All or none: a change the MTA did not allow tempfails before any is sent, as
    // the native engine does.
    const unsigned long allowed = agreed(ctx).actions;
    for (const Modification& m : changes) {
        if ((allowed & m.action()) != m.action()) {
            log(LogLevel::error, qid + ": " + m.describe() + " not allowed by the MTA, tempfail");
            metrics_.add(Counter::errors);
            return answer(ctx, changes_not_allowed());
        }
    }
    for (const Modification& m : changes) {
        using Kind = Modification::Kind;
        char* name = const_cast<char*>(m.name.c_str());
        int rc = MI_FAILURE;
        switch (m.kind) {
            case Kind::change_from:
                rc = smfi_chgfrom(ctx, name, nullptr);
                break;
            case Kind::remove_recipient:
                rc = smfi_delrcpt(ctx, name);
                break;
            case Kind::add_recipient:
                rc = smfi_addrcpt(ctx, name);
                break;
            case Kind::add_header:
                rc = smfi_addheader(ctx, name, const_cast<char*>(m.value.c_str()));
                break;
            case Kind::remove_header:
                rc = smfi_chgheader(ctx, name, m.index, nullptr);
                break;
        }
        if (rc != MI_SUCCESS) {
            // Not offered by the MTA (libmilter checks), or the MTA went away.
            log(LogLevel::error, qid + ": " + m.describe() + " not allowed by the MTA, tempfail");
            metrics_.add(Counter::errors);
            return answer(ctx, changes_not_allowed());
        }
    }
    return answer(ctx, eom.decision);
}

// Runs an end of message on a thread of its own and, while it waits longer than
// 2 s, sends SMFIR_PROGRESS from the callback's thread (the one smfi_progress() may
// be called from), as the native engine does, so that the MTA's read timeout does
// not run out.
template <class F>
EndOfMessage LibmilterEngine::with_progress(SMFICTX* ctx, F f) {
    auto result = std::async(std::launch::async, f);
    while (result.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
        if (smfi_progress(ctx) == MI_SUCCESS) metrics_.add(Counter::milter_progress);
    }
    return result.get();  // rethrows what the end of message threw
}

void LibmilterEngine::message_done(Conn* c) {
    if (c->in_message) {
        c->in_message = false;
        --in_message_;
    }
}

std::string LibmilterEngine::open(const std::string& socket_spec) {
    static smfiDesc desc = {
        const_cast<char*>("backstop"),
        SMFI_VERSION,
        // None here: negotiate_cb asks for what the MTA offers of what backstop
        // uses (libmilter would refuse an MTA that lacks any flag given here).
        0,
        connect_cb,
        helo_cb,
        mail_cb,
        rcpt_cb,
        header_cb,
        eoh_cb,
        body_cb,
        eom_cb,
        abort_cb,
        close_cb,
        unknown_cb,
        data_cb,
        negotiate_cb,
    };
    g_engine = this;
    if (smfi_register(desc) != MI_SUCCESS) return "libmilter: smfi_register failed";
    if (smfi_setconn(const_cast<char*>(socket_spec.c_str())) != MI_SUCCESS)
        return "libmilter: bad socket " + socket_spec;
    // As the native engine: a silent MTA connection is closed after 7210 s.
    smfi_settimeout(7210);
    smfi_setbacklog(SOMAXCONN);
    if (smfi_opensocket(1) != MI_SUCCESS) return "cannot open socket " + socket_spec;
    disable_nagle(socket_spec);
    return {};
}

void LibmilterEngine::stop() {
    stopping_ = true;
    let_messages_finish([this] { return std::size_t(in_message_.load()); }, grace_, "messages");
    // smfi_stop() waits for libmilter's listener to leave its poll, up to 5 s; the
    // messages are done, so the process need not wait with it (main.cpp exits).
    std::thread([] { smfi_stop(); }).detach();
}

void LibmilterEngine::serve() {
    const int rc = smfi_main();
    notify_stopping();
    if (rc != MI_SUCCESS) throw std::runtime_error("libmilter: smfi_main failed");
}

}  // namespace

std::unique_ptr<Engine> make_libmilter_engine(const PolicyHolder& holder, Metrics& metrics,
                                              const Clock& clock, int stop_grace_seconds) {
    return std::make_unique<LibmilterEngine>(holder, metrics, clock, stop_grace_seconds);
}

}  // namespace backstop::milter
