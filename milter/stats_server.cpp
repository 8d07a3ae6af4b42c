#include "stats_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "log.hpp"

namespace backstop::milter {

namespace {

bool parse_spec(const std::string& spec, sockaddr_storage& addr, socklen_t& len) {
    std::size_t at = spec.find('@');
    if (spec.rfind("inet:", 0) != 0 || at == std::string::npos) return false;
    int port = std::atoi(spec.substr(5, at - 5).c_str());
    std::string host = spec.substr(at + 1);
    std::memset(&addr, 0, sizeof addr);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(std::uint16_t(port));
        len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(std::uint16_t(port));
        len = sizeof *v6;
        return true;
    }
    return false;
}

void set_timeouts(int fd, int seconds) {
    timeval tv{seconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;
        off += std::size_t(n);
    }
}

// One request per connection, answered and closed; a slow client times out after
// two seconds and cannot hold the endpoint longer.
void serve(int listener) {
    for (;;) {
        int fd = accept(listener, nullptr, nullptr);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            log(LogLevel::error, std::string("stats-socket accept: ") + std::strerror(errno));
            return;
        }
        set_timeouts(fd, 2);
        std::string request;
        char buf[1024];
        while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            request.append(buf, std::size_t(n));
        }
        std::string body, status = "200 OK";
        if (request.rfind("GET /metrics ", 0) == 0 || request.rfind("GET /metrics\r", 0) == 0) {
            body = daemon_metrics().prometheus();
        } else {
            status = "404 Not Found";
            body = "only GET /metrics is served here\n";
        }
        write_all(fd, "HTTP/1.0 " + status +
                          "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
        close(fd);
    }
}

}  // namespace

Metrics& daemon_metrics() {
    static Metrics metrics;
    return metrics;
}

std::string start_stats_server(const std::string& spec) {
    sockaddr_storage addr{};
    socklen_t len = 0;
    if (!parse_spec(spec, addr, len)) return "stats-socket '" + spec + "' is not inet:PORT@IP";
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::string("stats-socket: ") + std::strerror(errno);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 16) != 0) {
        std::string why = std::strerror(errno);
        close(fd);
        return "stats-socket " + spec + ": " + why;
    }
    std::thread(serve, fd).detach();
    return {};
}

bool fetch_stats(const std::string& spec, std::string& out) {
    sockaddr_storage addr{};
    socklen_t len = 0;
    if (!parse_spec(spec, addr, len)) {
        out = "stats-socket is not set (or not inet:PORT@IP) in the configuration";
        return false;
    }
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    set_timeouts(fd, 5);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
        out = "cannot connect to " + spec + ": " + std::strerror(errno);
        if (fd >= 0) close(fd);
        return false;
    }
    write_all(fd, "GET /metrics HTTP/1.0\r\n\r\n");
    std::string response;
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) response.append(buf, std::size_t(n));
    close(fd);
    std::size_t body = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.0 200", 0) != 0 || body == std::string::npos) {
        out = "unexpected answer from " + spec;
        return false;
    }
    out = response.substr(body + 4);
    return true;
}

}  // namespace backstop::milter
