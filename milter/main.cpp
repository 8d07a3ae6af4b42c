// backstop-milter: signs outbound envelope senders (BATV, SRS) on relay hosts and
// refuses backscatter on the inbound MX. Options, socket, privileges, signals.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "backstop/policy/config.hpp"
#include "backstop/policy/policy.hpp"
#include "backstop/policy/state_options.hpp"
#include "backstop/state/store.hpp"
#include "engine.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "notify.hpp"
#include "pidfile.hpp"
#include "policy_holder.hpp"
#include "privileges.hpp"
#include "socketmap_service.hpp"
#include "stats_server.hpp"

namespace {

using namespace backstop;
using namespace backstop::milter;

// Read when no --config is given, as OpenDKIM reads /etc/opendkim.conf.
constexpr const char* kDefaultConfig = "/etc/backstop/backstop.conf";

constexpr const char* kUsage =
    "usage: backstop-milter [--config FILE] [--check-config] [--KEY VALUE ...]\n"
    "  --config FILE     configuration file (INI; keys are the long options below);\n"
    "                    default /etc/backstop/backstop.conf; /dev/null: built-in defaults\n"
    "  --check-config    validate the configuration and key files, then exit 0 or 1\n"
    "  --connect         with --check-config: also reach the state store (Redis: connect,\n"
    "                    TLS, AUTH, SELECT, PING) and say what failed\n"
    "  --stats           print the metrics of the running milter (from stats-socket) and exit\n"
    "  --help, --version\n"
    "  --engine native|libmilter   who speaks the milter protocol (as [general] engine)\n"
    "Signals: SIGUSR1 reloads the configuration (a bad one is logged and the old one kept);\n"
    "SIGTERM and SIGHUP stop the milter.\n\n";

struct Args {
    std::string config_path = kDefaultConfig;
    bool check = false;
    bool connect = false;
    bool stats = false;
    std::vector<std::string> rest;
};

Result<std::shared_ptr<const Policy>, Failure> load(const Args& args) {
    auto config = parse_config(args.config_path, args.rest);
    if (!config) return config.error();
    if (auto missing = missing_for_milter(*config); !missing.empty()) return Failure{missing};
    return Policy::build(*config);
}

void reload(const Args& args);

// The engine this process serves with; a reload cannot change it.
std::string g_running_engine;

// Every signal we act on is blocked in every thread and taken here, in the main
// thread, so neither a reload nor a stop ever runs inside a signal handler. The main
// thread: Linux gives a signal sent to the process to its first thread when that
// one waits for it, so libmilter's own signal thread (which waits for SIGTERM too)
// never takes it first. Returns after a stop signal, or once serving has ended.
void signal_loop(const Args& args, Engine* engine, const std::atomic<bool>& serving_ended) {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGUSR1, SIGHUP, SIGTERM, SIGINT}) sigaddset(&set, sig);
    const timespec tick{1, 0};
    while (!serving_ended.load()) {
        const int sig = sigtimedwait(&set, nullptr, &tick);
        if (sig < 0) continue;  // the tick, or EINTR
        if (sig == SIGUSR1) {
            notify_systemd("RELOADING=1");
            reload(args);
            notify_systemd("READY=1");
            continue;
        }
        log(LogLevel::info, std::string("signal ") + strsignal(sig) + ": stopping");
        notify_stopping();
        engine->stop();
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
        auto options = state_options((*policy)->config());
        if (!options) {
            log(LogLevel::error, "configuration error, keeping the old configuration: state: " +
                                     options.error().message);
            return;
        }
        const std::string spec = state_identity((*policy)->config(), *options);
        if (spec != current_policy().state_spec()) {
            auto store = open_state((*policy)->config().state, *options);
            if (!store) {
                log(LogLevel::error, "configuration error, keeping the old configuration: state: " +
                                         store.error().message);
                return;
            }
            current_policy().set_state(*store, spec);
        }
        if ((*policy)->config().engine != g_running_engine) {
            log(LogLevel::warning, "engine = " + (*policy)->config().engine +
                                       " takes a restart; keeping the running engine, " +
                                       g_running_engine);
        }
        log_set_level(log_level_from((*policy)->config().log_level));
        current_policy().set(*policy);
        log(LogLevel::info, "configuration reloaded from " + args.config_path);
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
        } else if (a == "--connect") {
            args.connect = true;
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
    const std::vector<std::string> warnings = config_warnings(cfg);
    if (args.connect && !args.check) {
        std::cerr << "backstop-milter: --connect goes with --check-config\n";
        return 1;
    }
    auto options = state_options(cfg);
    if (!options) {
        std::cerr << "backstop-milter: " << options.error().message << "\n";
        return 1;
    }
    auto store = open_state(cfg.state, *options);
    if (!store) {
        std::cerr << "backstop-milter: " << store.error().message << "\n";
        return 1;
    }
    if (args.check) {
        for (const auto& w : warnings) std::cerr << "backstop-milter: warning: " << w << "\n";
        if (args.connect) {
            auto reached = (*store)->check();
            if (!reached) {
                std::cerr << "backstop-milter: " << reached.error().message << "\n";
                return 1;
            }
            std::cout << "backstop-milter: state " << cfg.state << " answers\n";
        }
        std::cout << "backstop-milter: configuration OK (" << args.config_path << ")\n";
        return 0;
    }
    if (geteuid() == 0 && cfg.user.empty() && !cfg.allow_root) {
        std::cerr << "backstop-milter: refusing to run as root: set 'user' (to drop privileges) or "
                     "'allow-root = true'\n";
        return 1;
    }
    log_open(cfg.foreground, log_level_from(cfg.log_level));
    for (const auto& w : warnings) log(LogLevel::warning, w);
    current_policy().set(*policy);
    // A store that does not answer yet is no reason not to start (mail is served
    // by on-state-error meanwhile), but the log says at once what is wrong.
    if (auto reached = (*store)->check(); !reached) {
        log(LogLevel::error, reached.error().message + " (until it answers, on-state-error = " +
                                 to_string(cfg.on_state_error) + " applies)");
    }
    current_policy().set_state(*store, state_identity(cfg, *options));

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
    static SystemClock clock;
    g_running_engine = cfg.engine;
    constexpr int kStopGraceSeconds = 10;  // at stop, how long messages under way may finish
    std::unique_ptr<Engine> engine =
        cfg.engine == "libmilter"
            ? make_libmilter_engine(current_policy(), daemon_metrics(), clock, kStopGraceSeconds)
            : make_native_engine(current_policy(), daemon_metrics(), clock, kStopGraceSeconds);
    if (auto e = engine->open(cfg.socket); !e.empty()) {
        std::cerr << "backstop-milter: " << e << "\n";
        return 1;
    }
    if (spec.kind == ListenSpec::Kind::unix_path) {
        if (auto e = set_socket_permissions(spec.path, cfg.socket_mode, cfg.socket_group);
            !e.empty()) {
            std::cerr << "backstop-milter: " << e << "\n";
            return 1;
        }
    }
    // The pidfile is made by the user the milter serves as, so that this user can
    // remove it at exit; as root, its missing directory is made for that user first.
    PidFile pidfile;
    if (!cfg.pidfile.empty() && !cfg.user.empty() && geteuid() == 0) {
        if (auto e = PidFile::prepare_directory(cfg.pidfile, cfg.user); !e.empty()) {
            std::cerr << "backstop-milter: " << e << "\n";
            return 1;
        }
    }
    if (!cfg.user.empty()) {
        if (auto why = drop_privileges(cfg.user); !why.empty()) {
            std::cerr << "backstop-milter: cannot drop privileges: " << why << "\n";
            return 1;
        }
    }
    if (!cfg.pidfile.empty()) {
        if (auto e = pidfile.open(cfg.pidfile); !e.empty()) {
            std::cerr << "backstop-milter: " << e << "\n";
            return 1;
        }
    }
    if (!cfg.foreground && daemon(0, 0) != 0) {
        std::perror("backstop-milter: daemon");
        return 1;
    }
    if (auto e = pidfile.write(getpid()); !e.empty()) {
        log(LogLevel::error, e);
        return 1;
    }
    // Block the signals the signal thread waits for before any thread starts, so
    // every thread inherits the mask and none of them is killed by one.
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGUSR1, SIGHUP, SIGTERM, SIGINT}) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    if (!cfg.stats_socket.empty()) {
        if (auto e = start_stats_server(cfg.stats_socket); !e.empty()) {
            log(LogLevel::error, e);
            return 1;
        }
    }
    socketmap.start(current_policy(), daemon_metrics(), clock);
    log(LogLevel::info, "listening on " + cfg.socket + (cfg.user.empty() ? "" : " as " + cfg.user) +
                            " (" + cfg.engine + " engine)");
    // The socket is open: an MTA that connects now waits in the backlog, so systemd
    // may start the MTA (Type=notify).
    notify_systemd("READY=1\nMAINPID=" + std::to_string(getpid()));
    std::atomic<int> rc{0};
    std::atomic<bool> serving_ended{false};
    std::thread serving([&] {
        try {
            engine->serve();
        } catch (const std::exception& e) {
            log(LogLevel::error, std::string("cannot serve: ") + e.what());
            rc = 1;
        }
        serving_ended = true;
    });
    signal_loop(args, engine.get(), serving_ended);
    // stop() has let the messages under way end and closed the socket. libmilter's
    // listener notices only at its next poll, up to 5 s later: do not wait for it.
    for (int i = 0; i < 10 && !serving_ended.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (serving_ended.load()) {
        serving.join();
    } else {
        serving.detach();
    }
    socketmap.stop();
    if (spec.kind == ListenSpec::Kind::unix_path) unlink(spec.path.c_str());
    pidfile.remove();
    log(LogLevel::info, "stopped");
    // Worker threads may still be finishing a command of a connection the MTA
    // abandoned: running static destructors (the policy, the metrics) under them
    // would be a use after free. Leave without them.
    std::fflush(nullptr);
    std::_Exit(rc.load());
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
