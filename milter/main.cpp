// backstop-milter: signs outbound envelope senders (BATV, SRS) on relay hosts and
// refuses backscatter on the inbound MX. Options, socket, privileges, signals.
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "backstop/config.hpp"
#include "backstop/policy.hpp"
#include "backstop/state.hpp"
#include "callbacks.hpp"
#include "log.hpp"
#include "notify.hpp"
#include "policy_holder.hpp"
#include "privileges.hpp"
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

// SIGUSR1 is blocked in every thread and taken here, so reload never runs inside
// a signal handler and libmilter's own signal thread keeps SIGHUP/SIGTERM.
void reload_loop(Args args) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        notify_systemd("RELOADING=1");
        reload(args);
        notify_systemd("READY=1");
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

// libmilter sends each end-of-message modification as its own write. With Nagle
// on, the final reply waits for the MTA's delayed ACK of the previous packet
// (~40 ms a message on Linux). libmilter offers no hook on its sockets, so set
// TCP_NODELAY on the listening socket it opened; accepted sockets inherit it.
void disable_nagle_on_listener() {
    for (int fd = 0; fd < 1024; ++fd) {
        int listening = 0, type = 0;
        socklen_t len = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
            continue;
        len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) continue;
        sockaddr_storage addr{};
        len = sizeof addr;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
        if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

std::string unix_socket_path(const std::string& spec) {
    for (const char* prefix : {"unix:", "local:"}) {
        if (spec.rfind(prefix, 0) == 0) return spec.substr(std::strlen(prefix));
    }
    return {};
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

    if (smfi_setconn(const_cast<char*>(cfg.socket.c_str())) != MI_SUCCESS ||
        smfi_register(*filter_description()) != MI_SUCCESS) {
        std::cerr << "backstop-milter: cannot set up the milter on " << cfg.socket << "\n";
        return 1;
    }
    if (smfi_opensocket(true) != MI_SUCCESS) {
        std::cerr << "backstop-milter: cannot open socket " << cfg.socket << "\n";
        return 1;
    }
    disable_nagle_on_listener();
    if (std::string path = unix_socket_path(cfg.socket); !path.empty()) {
        if (auto why = set_socket_permissions(path, cfg.socket_mode, cfg.socket_group);
            !why.empty()) {
            std::cerr << "backstop-milter: " << why << "\n";
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
    // Block the signals libmilter's own thread waits for (HUP, TERM, INT) and our
    // SIGUSR1 before any thread starts, so every thread inherits the mask and none
    // of them is killed by a signal meant for a sigwait().
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGUSR1, SIGHUP, SIGTERM, SIGINT}) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread(reload_loop, args).detach();

    if (!cfg.stats_socket.empty()) {
        if (auto why = start_stats_server(cfg.stats_socket); !why.empty()) {
            log(LogLevel::error, why);
            return 1;
        }
    }
    log(LogLevel::info, "listening on " + cfg.socket + (cfg.user.empty() ? "" : " as " + cfg.user));
    // The socket is open: an MTA that connects now waits in the backlog, so systemd
    // may start the MTA (Type=notify).
    notify_systemd("READY=1\nMAINPID=" + std::to_string(getpid()));
    int rc = smfi_main();
    notify_systemd("STOPPING=1");
    log(LogLevel::info, "stopped");
    // smfi_main returns while libmilter's worker threads may still be finishing a
    // callback: running static destructors (the policy, the metrics) under them
    // would be a use after free. Leave without them.
    std::fflush(nullptr);
    std::_Exit(rc == MI_SUCCESS ? 0 : 1);
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
