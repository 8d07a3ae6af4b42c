#include "socketmap_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace backstop::test {

std::string netstring(std::string_view data) {
    return std::to_string(data.size()) + ":" + std::string(data) + ",";
}

SocketmapClient SocketmapClient::connect_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof sun.sun_path) throw SocketmapError("socket path too long");
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
        std::string why = std::strerror(errno);
        if (fd >= 0) ::close(fd);
        throw SocketmapError("connect " + path + ": " + why);
    }
    return SocketmapClient(fd);
}

SocketmapClient SocketmapClient::connect_tcp(const std::string& host, std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &sin.sin_addr);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
        std::string why = std::strerror(errno);
        if (fd >= 0) ::close(fd);
        throw SocketmapError("connect " + host + ":" + std::to_string(port) + ": " + why);
    }
    return SocketmapClient(fd);
}

SocketmapClient::~SocketmapClient() {
    if (fd_ >= 0) ::close(fd_);
}

SocketmapClient::SocketmapClient(SocketmapClient&& other) noexcept
    : timeout(other.timeout), fd_(other.fd_), in_(std::move(other.in_)) {
    other.fd_ = -1;
}

void SocketmapClient::send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw SocketmapError(std::string("send: ") + std::strerror(errno));
        bytes.remove_prefix(std::size_t(n));
    }
}

void SocketmapClient::send_request(std::string_view name, std::string_view key) {
    send_raw(netstring(std::string(name) + " " + std::string(key)));
}

bool SocketmapClient::fill() {
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, int(timeout.count()));
    if (ready == 0) throw SocketmapError("no answer before the deadline");
    if (ready < 0) throw SocketmapError(std::string("poll: ") + std::strerror(errno));
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == ECONNRESET) return false;
    if (n < 0) throw SocketmapError(std::string("recv: ") + std::strerror(errno));
    if (n == 0) return false;
    in_.append(buf, std::size_t(n));
    return true;
}

std::optional<std::string> SocketmapClient::read_reply() {
    for (;;) {
        std::size_t colon = in_.find(':');
        if (colon != std::string::npos) {
            if (colon == 0 || in_.find_first_not_of("0123456789") != colon)
                throw SocketmapError("malformed reply: " + in_.substr(0, 40));
            std::size_t len = std::stoul(in_.substr(0, colon));
            if (in_.size() >= colon + 1 + len + 1) {
                if (in_[colon + 1 + len] != ',') throw SocketmapError("reply without ','");
                std::string data = in_.substr(colon + 1, len);
                in_.erase(0, colon + 1 + len + 1);
                return data;
            }
        }
        if (!fill()) {
            if (!in_.empty()) throw SocketmapError("connection closed inside a reply");
            return std::nullopt;
        }
    }
}

std::string SocketmapClient::query(std::string_view name, std::string_view key) {
    send_request(name, key);
    auto r = read_reply();
    if (!r) throw SocketmapError("the server closed the connection instead of answering");
    return *r;
}

bool SocketmapClient::closed_by_server() {
    if (!in_.empty()) return false;
    try {
        return !fill();
    } catch (const SocketmapError&) {
        return false;
    }
}

}  // namespace backstop::test
