// backstop-milter: signs outbound envelope senders (BATV, SRS) on relay hosts and
// refuses backscatter on the inbound MX. Options, socket, privileges, signals.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "backstop/policy/config.hpp"
#include "backstop/policy/policy.hpp"
#include "backstop/state/store.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "notify.hpp"
#include "policy_holder.hpp"
#include "privileges.hpp"
#include "server.hpp"
#include "socketmap_service.hpp"
#include "stats_server.hpp"

namespace {

using namespace backstop;
using namespace backstop::milter;

constexpr const char* kUsage =
    "usage: backstop-milter [--config FILE] [--check-config] [--KEY VALUE ...]\n"
    "  --config FILE     configuration file (INI; keys are the long options below)\n"
    "  --check-config    validate the configuration and key files, then exit 0 or 1\n"
    "  --stats           print the metrics of the running milter (from stats-socket) and exit\n"
    "  --help, --version\n"
    "Signals: SIGUSR1 reloads the configuration (a bad one is logged and the old one kept);\n"
    "SIGTERM and SIGHUP stop the milter.\n\n";

struct Args {
    std::string config_path;
    bool check = false;
    bool stats = false;
    std::vector<std::string> rest;
};

Result<std::shared_ptr<const Policy>, Failure> load(const Args& args) {
    auto config = parse_config(args.config_path, args.rest);
    if (!config) return config.error();
    return Policy::build(*config);
}

StateOptions state_options(const Config& c) {
    StateOptions o;
    o.bounce_ttl = UnixTime(c.bounce_expiry) * 86400;
    return o;
}

std::string state_identity(const Config& c) {
    return c.state + " bounce-expiry=" + std::to_string(c.bounce_expiry);
}

void reload(const Args& args);

// Every signal we act on is blocked in every thread and taken here, so neither a
// reload nor a stop ever runs inside a signal handler.
void signal_loop(Args args, Server* server) {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGUSR1, SIGHUP, SIGTERM, SIGINT}) sigaddset(&set, sig);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGUSR1) {
            notify_systemd("RELOADING=1");
            reload(args);
            notify_systemd("READY=1");
            continue;
        }
        log(LogLevel::info, std::string("signal ") + strsignal(sig) + ": stopping");
        notify_systemd("STOPPING=1");
        server->stop();
        return;
    }
}

// One SIGUSR1: the new configuration, or the old one kept with the error logged.
void reload(const Args& args) {
    {
        auto policy = load(args);
        if (!policy) {
            log(LogLevel::error,
                "configuration error, keeping the old configuration: " + policy.error().message);
            return;
        }
        // The store is reopened only when where it lives or how long it keeps
        // records changes; counters survive an ordinary reload.
        const std::string spec = state_identity((*policy)->config());
        if (spec != current_policy().state_spec()) {
            auto store = open_state((*policy)->config().state, state_options((*policy)->config()));
            if (!store) {
                log(LogLevel::error, "configuration error, keeping the old configuration: state: " +
                                         store.error().message);
                return;
            }
            current_policy().set_state(*store, spec);
        }
        log_set_level(log_level_from((*policy)->config().log_level));
        current_policy().set(*policy);
        log(LogLevel::info,
            "configuration reloaded from " +
                (args.config_path.empty() ? std::string("command line") : args.config_path));
    }
}

int run(int argc, char** argv) {
    Args args;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << kUsage << config_help();
            return 0;
        }
        if (a == "--version") {
            std::cout << "backstop-milter 0.1.0\n";
            return 0;
        }
        if (a == "--check-config") {
            args.check = true;
        } else if (a == "--stats") {
            args.stats = true;
        } else if (a == "--config") {
            if (i + 1 >= argc) {
                std::cerr << "backstop-milter: --config needs a file name\n" << kUsage;
                return 1;
            }
            args.config_path = argv[++i];
        } else if (a.rfind("--config=", 0) == 0) {
            args.config_path = a.substr(9);
        } else {
            args.rest.push_back(a);
        }
    }
    auto policy = load(args);
    if (!policy) {
        std::cerr << "backstop-milter: " << policy.error().message << "\n";
        return 1;
    }
    const Config& cfg = (*policy)->config();
    if (args.stats) {
        std::string out;
        bool ok = fetch_stats(cfg.stats_socket, out);
        (ok ? std::cout : std::cerr) << (ok ? "" : "backstop-milter: ") << out << (ok ? "" : "\n");
        return ok ? 0 : 1;
    }
    if (args.check) {
        std::cout << "backstop-milter: configuration OK"
                  << (args.config_path.empty() ? "" : " (" + args.config_path + ")") << "\n";
        return 0;
    }
    if (geteuid() == 0 && cfg.user.empty() && !cfg.allow_root) {
        std::cerr << "backstop-milter: refusing to run as root: set 'user' (to drop privileges) or "
                     "'allow-root = true'\n";
        return 1;
    }
    log_open(cfg.foreground, log_level_from(cfg.log_level));
    current_policy().set(*policy);
    {
        auto store = open_state(cfg.state, state_options(cfg));
        if (!store) {
            std::cerr << "backstop-milter: " << store.error().message << "\n";
            return 1;
        }
        current_policy().set_state(*store, state_identity(cfg));
    }

    // The socketmap's socket is opened while we may still be root, and before the
    // milter's: an MTA never finds the milter listening in a daemon about to exit.
    SocketmapService socketmap;
    if (auto e = socketmap.open(cfg); !e.empty()) {
        std::cerr << "backstop-milter: " << e << "\n";
        return 1;
    }
    ListenSpec spec;
    std::string why;
    if (!parse_listen_spec(cfg.socket, spec, why)) {
        std::cerr << "backstop-milter: socket: " << why << "\n";
        return 1;
    }
    const int listener = open_listener(spec, why);
    if (listener < 0) {
        std::cerr << "backstop-milter: cannot open socket " << cfg.socket << ": " << why << "\n";
        return 1;
    }
    if (spec.kind == ListenSpec::Kind::unix_path) {
        if (auto e = set_socket_permissions(spec.path, cfg.socket_mode, cfg.socket_group);
            !e.empty()) {
            std::cerr << "backstop-milter: " << e << "\n";
            return 1;
        }
    }
    if (!cfg.foreground && daemon(0, 0) != 0) {
        std::perror("backstop-milter: daemon");
        return 1;
    }
    if (!cfg.pidfile.empty()) {
        std::ofstream pid(cfg.pidfile, std::ios::trunc);
        pid << getpid() << "\n";
        if (!pid) log(LogLevel::warning, "cannot write pidfile " + cfg.pidfile);
    }
    if (!cfg.user.empty()) {
        if (auto why = drop_privileges(cfg.user); !why.empty()) {
            log(LogLevel::error, "cannot drop privileges: " + why);
            return 1;
        }
    }
    // Block the signals the signal thread waits for before any thread starts, so
    // every thread inherits the mask and none of them is killed by one.
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGUSR1, SIGHUP, SIGTERM, SIGINT}) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    static SystemClock clock;
    Server server(current_policy(), daemon_metrics(), clock, ServerOptions{});
    std::thread(signal_loop, args, &server).detach();

    if (!cfg.stats_socket.empty()) {
        if (auto e = start_stats_server(cfg.stats_socket); !e.empty()) {
            log(LogLevel::error, e);
            return 1;
        }
    }
    socketmap.start(current_policy(), daemon_metrics(), clock);
    log(LogLevel::info, "listening on " + cfg.socket + (cfg.user.empty() ? "" : " as " + cfg.user));
    // The socket is open: an MTA that connects now waits in the backlog, so systemd
    // may start the MTA (Type=notify).
    notify_systemd("READY=1\nMAINPID=" + std::to_string(getpid()));
    int rc = 0;
    try {
        server.serve(listener);
    } catch (const std::exception& e) {
        log(LogLevel::error, std::string("cannot serve: ") + e.what());
        rc = 1;
    }
    socketmap.stop();
    if (spec.kind == ListenSpec::Kind::unix_path) unlink(spec.path.c_str());
    log(LogLevel::info, "stopped");
    // Worker threads may still be finishing a command of a connection the MTA
    // abandoned: running static destructors (the policy, the metrics) under them
    // would be a use after free. Leave without them.
    std::fflush(nullptr);
    std::_Exit(rc);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "backstop-milter: " << e.what() << "\n";
        return 1;
    }
}
