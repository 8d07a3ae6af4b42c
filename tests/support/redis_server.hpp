// A throwaway redis-server on a free loopback port, for the tests of the Redis
// state store (unit) and of two milters sharing it (protocol).
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace backstop::test {

// A loopback port with no listener (the kernel picks it).
inline int free_tcp_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

inline bool tcp_listening(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
}

// True once the replicas hold every write the master took before the call. WAIT
// waits only for the calling connection's own writes: from a fresh connection that
// wrote nothing it returns at once with every connected replica counted, even one
// that has not received a byte of the stream yet. So one connection writes a
// marker and WAITs for that: the stream is ordered, so its ack covers all earlier
// writes (the milters' too).
// cli_flags: more redis-cli options (--tls --cacert ... for a TLS-only master).
inline bool replicas_caught_up(int master_port, int replicas = 1, int timeout_ms = 5000,
                               const std::string& password = "",
                               const std::string& cli_flags = "") {
    std::string line = "printf 'INCR backstop-test:synced\\nWAIT " + std::to_string(replicas) +
                       " " + std::to_string(timeout_ms) + "\\n' | redis-cli --no-auth-warning " +
                       cli_flags + (password.empty() ? "" : " -a '" + password + "'") + " -p " +
                       std::to_string(master_port) + " 2>/dev/null | tail -n 1 | grep -qx " +
                       std::to_string(replicas);
    return std::system(line.c_str()) == 0;
}

// Started by the constructor, killed by the destructor; stop()/start() simulate
// an outage. No persistence: every test starts empty.
class RedisServer {
  public:
    RedisServer() : port_(free_tcp_port()) { start(); }
    ~RedisServer() {
        stop();
        if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
    }
    // extra: more redis-server options ("--requirepass", "pw", ...). tls: the port
    // speaks TLS only (the options must name the certificates).
    explicit RedisServer(std::vector<std::string> extra, bool tls = false)
        : port_(free_tcp_port()), extra_(std::move(extra)), tls_(tls) {
        start();
    }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    int port() const { return port_; }
    // Its working directory (where a "--logfile" option's relative name goes).
    const std::string& dir() const { return dir_; }
    std::string spec(int db = 0) const {
        return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
    }
    bool running() const { return tcp_listening(port_); }

    void start() {
        if (dir_.empty()) {
            // Its own directory: a replica writes the master's RDB there.
            char d[] = "/tmp/backstop-redis-XXXXXX";
            if (mkdtemp(d)) dir_ = d;
        }
        pid_ = fork();
        if (pid_ == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            if (!dir_.empty() && chdir(dir_.c_str()) != 0) _exit(126);
            std::string p = std::to_string(port_);
            std::vector<std::string> a = {"redis-server", tls_ ? "--tls-port" : "--port", p};
            if (tls_) a.insert(a.end(), {"--port", "0"});
            a.insert(a.end(), {"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--loglevel", "warning"});
            a.insert(a.end(), extra_.begin(), extra_.end());
            std::vector<char*> argv;
            for (auto& s : a) argv.push_back(s.data());
            argv.push_back(nullptr);
            execvp("redis-server", argv.data());
            _exit(127);
        }
        for (int i = 0; i < 100 && !running(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }

    void stop() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

  private:
    int port_;
    std::string dir_;
    std::vector<std::string> extra_;
    bool tls_ = false;
    pid_t pid_ = -1;
};

// A redis-server --sentinel watching one master (as "mymaster", quorum 1) that
// fails over half a second after the master stops answering.
class RedisSentinel {
  public:
    // password: the Sentinel's own and the master's (one for the whole fleet).
    // tls: sentinel.conf lines (tls-cert-file, ...); with them the port is TLS only.
    explicit RedisSentinel(int master_port, const std::string& password = "",
                           const std::string& tls = "")
        : port_(free_tcp_port()) {
        char dir[] = "/tmp/backstop-sentinel-XXXXXX";
        dir_ = mkdtemp(dir) ? dir : "/tmp";
        conf_ = dir_ + "/sentinel.conf";
        std::string text = (tls.empty() ? "port " : tls + "port 0\ntls-port ") +
                           std::to_string(port_) + "\nbind 127.0.0.1\ndir " + dir_ +
                           "\nsentinel monitor mymaster 127.0.0.1 " + std::to_string(master_port) +
                           " 1\nsentinel down-after-milliseconds mymaster 500\n"
                           "sentinel failover-timeout mymaster 5000\n";
        if (!password.empty())
            text += "requirepass " + password + "\nsentinel auth-pass mymaster " + password + "\n";
        if (FILE* f = fopen(conf_.c_str(), "w")) {
            fputs(text.c_str(), f);
            fclose(f);
        }
        pid_ = fork();
        if (pid_ == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execlp("redis-server", "redis-server", conf_.c_str(), "--sentinel",
                   static_cast<char*>(nullptr));
            _exit(127);
        }
        for (int i = 0; i < 100 && !tcp_listening(port_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ~RedisSentinel() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        std::string rm = "rm -rf '" + dir_ + "'";
        if (dir_ != "/tmp" && std::system(rm.c_str()) != 0) {
        }
    }
    RedisSentinel(const RedisSentinel&) = delete;
    RedisSentinel& operator=(const RedisSentinel&) = delete;
    int port() const { return port_; }
    bool running() const { return tcp_listening(port_); }

  private:
    int port_;
    std::string dir_, conf_;
    pid_t pid_ = -1;
};

}  // namespace backstop::test
