#include "callbacks.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <chrono>
#include <exception>
#include <memory>
#include <string>

#include "backstop/clock.hpp"
#include "backstop/session.hpp"
#include "log.hpp"
#include "policy_holder.hpp"
#include "stats_server.hpp"

namespace backstop::milter {

namespace {

struct Connection {
    Connection(std::shared_ptr<const Policy> p, std::shared_ptr<StateStore> s)
        : state(std::move(s)), session(std::move(p), clock) {
        session.set_metrics(&daemon_metrics());
        session.set_state(state.get());
    }
    SystemClock clock;
    std::shared_ptr<StateStore> state;  // kept alive for this connection
    Session session;
};

Connection* conn(SMFICTX* ctx) {
    return static_cast<Connection*>(smfi_getpriv(ctx));
}

std::string macro(SMFICTX* ctx, const char* name) {
    const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
    return v ? v : "";
}

std::string queue_id(SMFICTX* ctx) {
    std::string id = macro(ctx, "i");
    return id.empty() ? "NOQUEUE" : id;
}

// smfi_setreply text: no CR/LF, '%' doubled, at most 980 characters.
std::string reply_text(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (out.size() >= 970) break;
        if (c == '\r' || c == '\n') c = ' ';
        out.push_back(c);
        if (c == '%') out.push_back('%');
    }
    return out;
}

sfsistat to_status(SMFICTX* ctx, const Decision& d) {
    switch (d.step) {
        case Step::proceed:
            return SMFIS_CONTINUE;
        case Step::accept:
            return SMFIS_ACCEPT;
        case Step::discard:
            return SMFIS_DISCARD;
        case Step::reject:
        case Step::tempfail: {
            std::string text = reply_text(d.text);
            if (smfi_setreply(ctx, const_cast<char*>(d.code.c_str()),
                              const_cast<char*>(d.xcode.c_str()),
                              const_cast<char*>(text.c_str())) != MI_SUCCESS) {
                log(LogLevel::warning, "smfi_setreply failed for: " + text);
            }
            return d.step == Step::reject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
        }
    }
    return SMFIS_TEMPFAIL;
}

// Runs fn; an exception or a missing connection becomes a logged tempfail.
template <class Fn>
sfsistat guarded(SMFICTX* ctx, const char* where, Fn fn) {
    try {
        Connection* c = conn(ctx);
        if (!c) {
            log(LogLevel::error, std::string(where) + ": no connection state, tempfail");
            return SMFIS_TEMPFAIL;
        }
        return fn(*c);
    } catch (const std::exception& e) {
        log(LogLevel::error, std::string(where) + ": internal error, tempfail: " + e.what());
    } catch (...) {
        log(LogLevel::error, std::string(where) + ": internal error, tempfail");
    }
    daemon_metrics().add(Counter::errors);
    return SMFIS_TEMPFAIL;
}

std::string address_text(_SOCK_ADDR* sa) {
    if (!sa) return {};
    char buf[INET6_ADDRSTRLEN] = {};
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
    }
    return buf;
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
    try {
        auto policy = current_policy().get();
        if (!policy) return SMFIS_TEMPFAIL;
        auto c = std::make_unique<Connection>(std::move(policy), current_policy().state());
        Decision d = c->session.connect(hostname ? hostname : "", address_text(addr));
        if (smfi_setpriv(ctx, c.get()) != MI_SUCCESS) return SMFIS_TEMPFAIL;
        c.release();
        return to_status(ctx, d);
    } catch (const std::exception& e) {
        log(LogLevel::error, std::string("connect: internal error, tempfail: ") + e.what());
    } catch (...) {
        log(LogLevel::error, "connect: internal error, tempfail");
    }
    return SMFIS_TEMPFAIL;
}

sfsistat on_helo(SMFICTX* ctx, char* name) {
    return guarded(ctx, "helo",
                   [&](Connection& c) { return to_status(ctx, c.session.helo(name ? name : "")); });
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "mail", [&](Connection& c) {
        std::string sender = argv && argv[0] ? argv[0] : "";
        return to_status(ctx, c.session.mail(sender, macro(ctx, "{auth_authen}")));
    });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "rcpt", [&](Connection& c) {
        std::string rcpt = argv && argv[0] ? argv[0] : "";
        Decision d = c.session.rcpt(rcpt);
        if (d.step == Step::reject || d.step == Step::tempfail) {
            log(LogLevel::info, queue_id(ctx) + ": rcpt=" + rcpt + " refused: " + d.code + " " +
                                    d.xcode + " " + d.text);
        }
        return to_status(ctx, d);
    });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    return guarded(ctx, "header", [&](Connection& c) {
        return to_status(ctx, c.session.header(name ? name : "", value ? value : ""));
    });
}

sfsistat on_eoh(SMFICTX* ctx) {
    return guarded(ctx, "eoh",
                   [&](Connection& c) { return to_status(ctx, c.session.end_of_headers()); });
}

sfsistat on_body(SMFICTX* ctx, unsigned char* data, size_t len) {
    return guarded(ctx, "body", [&](Connection& c) {
        return to_status(ctx, c.session.body({reinterpret_cast<const char*>(data), len}));
    });
}

// Applies the end-of-message actions; any failure tempfails the whole message so
// Postfix keeps it and retries: never accept a message we could not fix up.
sfsistat on_eom(SMFICTX* ctx) {
    return guarded(ctx, "eom", [&](Connection& c) {
        const std::string qid = queue_id(ctx);
        auto started = std::chrono::steady_clock::now();
        EndOfMessage eom = c.session.end_of_message(qid);
        daemon_metrics().observe_latency_us(
            std::uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count()));
        auto failed = [&](const std::string& what) {
            log(LogLevel::error, qid + ": " + what + " failed, tempfail");
            return SMFIS_TEMPFAIL;
        };
        if (eom.decision.step == Step::proceed || eom.decision.step == Step::accept) {
            if (eom.new_sender) {
                std::string s = "<" + *eom.new_sender + ">";
                if (smfi_chgfrom(ctx, s.data(), nullptr) != MI_SUCCESS)
                    return failed("smfi_chgfrom " + s);
            }
            for (auto& r : eom.remove_recipients) {
                if (smfi_delrcpt(ctx, r.data()) != MI_SUCCESS) return failed("smfi_delrcpt " + r);
            }
            for (auto& r : eom.add_recipients) {
                std::string a = "<" + r + ">";
                if (smfi_addrcpt(ctx, a.data()) != MI_SUCCESS) return failed("smfi_addrcpt " + a);
            }
            for (auto& h : eom.header_edits) {
                int rc = h.kind == HeaderEdit::Kind::add
                             ? smfi_addheader(ctx, h.name.data(), h.value.data())
                             : smfi_chgheader(ctx, h.name.data(), h.index, nullptr);
                if (rc != MI_SUCCESS) return failed("header change " + h.name);
            }
        }
        log(LogLevel::info, eom.log_line);
        return to_status(ctx, eom.decision);
    });
}

sfsistat on_abort(SMFICTX* ctx) {
    return guarded(ctx, "abort", [&](Connection& c) {
        c.session.abort();
        return SMFIS_CONTINUE;
    });
}

// Ask the MTA for the steps and macros we use and nothing else. Postfix writes a
// macro packet and the command after it as two separate writes; the second waits
// for our delayed ACK of the first (Nagle on the MTA's side, which we cannot turn
// off), so every macro list we do not need costs a stall per message.
sfsistat on_negotiate(SMFICTX* ctx, unsigned long actions, unsigned long steps, unsigned long,
                      unsigned long, unsigned long* want_actions, unsigned long* want_steps,
                      unsigned long* want2, unsigned long* want3) {
    try {
        const unsigned long needed =
            SMFIF_CHGFROM | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_ADDHDRS | SMFIF_CHGHDRS;
        if ((actions & needed) != needed) {
            log(LogLevel::warning,
                "the MTA does not offer every action backstop uses (milter_protocol = 6?); "
                "messages it would change are tempfailed");
        }
        *want_actions = (actions & needed) | (actions & SMFIF_SETSYMLIST);
        *want_steps = steps & (SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA);
        *want2 = 0;
        *want3 = 0;
        if (actions & SMFIF_SETSYMLIST) {
            char none[] = "";
            char mail[] = "{auth_authen}";
            char eom[] = "i";
            for (int stage : {SMFIM_CONNECT, SMFIM_HELO, SMFIM_ENVRCPT, SMFIM_DATA, SMFIM_EOH}) {
                smfi_setsymlist(ctx, stage, none);
            }
            smfi_setsymlist(ctx, SMFIM_ENVFROM, mail);
            smfi_setsymlist(ctx, SMFIM_EOM, eom);
        }
        return SMFIS_CONTINUE;
    } catch (...) {
        return SMFIS_ALL_OPTS;
    }
}

sfsistat on_close(SMFICTX* ctx) {
    // close may come without connect: no private data then.
    delete conn(ctx);
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

}  // namespace

smfiDesc* filter_description() {
    static smfiDesc desc = {
        const_cast<char*>("backstop"),
        SMFI_VERSION,
        SMFIF_CHGFROM | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_ADDHDRS | SMFIF_CHGHDRS,
        on_connect,
        on_helo,
        on_envfrom,
        on_envrcpt,
        on_header,
        on_eoh,
        on_body,
        on_eom,
        on_abort,
        on_close,
        nullptr,  // unknown
        nullptr,  // data
        on_negotiate,
    };
    return &desc;
}

}  // namespace backstop::milter
