#include "listener.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace backstop::milter {

namespace {

bool starts_with(const std::string& s, const char* prefix) {
    return s.rfind(prefix, 0) == 0;
}

std::string errno_text() {
    return std::strerror(errno);
}

}  // namespace

bool parse_listen_spec(const std::string& spec, ListenSpec& out, std::string& error) {
    out = ListenSpec{};
    for (const char* prefix : {"unix:", "local:"}) {
        if (starts_with(spec, prefix)) {
            out.kind = ListenSpec::Kind::unix_path;
            out.path = spec.substr(std::strlen(prefix));
            if (out.path.empty() || out.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
                error = "'" + spec + "': the socket path is empty or too long";
                return false;
            }
            return true;
        }
    }
    std::string rest;
    if (starts_with(spec, "inet:")) {
        out.kind = ListenSpec::Kind::inet;
        rest = spec.substr(5);
    } else if (starts_with(spec, "inet6:")) {
        out.kind = ListenSpec::Kind::inet6;
        rest = spec.substr(6);
    } else {
        error = "'" + spec + "' is not inet:PORT@HOST, inet6:PORT@HOST or unix:/path";
        return false;
    }
    const std::size_t at = rest.find('@');
    const std::string port = rest.substr(0, at);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
        error = "'" + spec + "': the port must be a number from 0 to 65535";
        return false;
    }
    out.port = std::uint16_t(std::stoul(port));
    if (at != std::string::npos) out.host = rest.substr(at + 1);
    if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']')
        out.host = out.host.substr(1, out.host.size() - 2);
    return true;
}

int open_listener(const ListenSpec& spec, std::string& error) {
    if (spec.kind == ListenSpec::Kind::unix_path) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, spec.path.c_str(), spec.path.size() + 1);
        // Replace a socket left by an earlier run, never a file of another kind.
        struct stat st {};
        if (lstat(spec.path.c_str(), &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                error = spec.path + " exists and is not a socket";
                return -1;
            }
            unlink(spec.path.c_str());
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            error = "socket: " + errno_text();
            return -1;
        }
        if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            listen(fd, SOMAXCONN) != 0) {
            error = spec.path + ": " + errno_text();
            close(fd);
            return -1;
        }
        return fd;
    }
    addrinfo hints{};
    hints.ai_family = spec.kind == ListenSpec::Kind::inet6 ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(spec.port);
    int rc =
        getaddrinfo(spec.host.empty() ? nullptr : spec.host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0 || !found) {
        error = "'" + spec.host + "': " + gai_strerror(rc);
        return -1;
    }
    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = "socket: " + errno_text();
        freeaddrinfo(found);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // inet6:PORT with no host takes IPv4 too, whatever net.ipv6.bindv6only says, as
    // libmilter's does: an MTA configured with inet:127.0.0.1:PORT must reach it.
    if (found->ai_family == AF_INET6) {
        const int v6only = spec.host.empty() ? 0 : 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    // Each reply is one small packet the MTA waits for: never hold it back (Nagle).
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        error =
            (spec.host.empty() ? std::string("*") : spec.host) + ":" + port + ": " + errno_text();
        close(fd);
        freeaddrinfo(found);
        return -1;
    }
    freeaddrinfo(found);
    return fd;
}

}  // namespace backstop::milter
