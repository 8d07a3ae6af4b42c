#include "socketmap_server.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "log.hpp"

namespace backstop::milter {

namespace {

std::int64_t steady_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// A key in a log line: a 100,000-byte request would drown the log.
std::string shown(std::string_view s) {
    constexpr std::size_t kMax = 256;
    if (s.size() <= kMax) return std::string(s);
    return std::string(s.substr(0, kMax)) + "...(" + std::to_string(s.size()) + " bytes)";
}

Counter counter_for(std::string_view map, MapStatus status) {
    if (status == MapStatus::perm) return Counter::socketmap_perm;
    const bool fwd = map == "forward";
    switch (status) {
        case MapStatus::ok:
            return fwd ? Counter::socketmap_forward_ok : Counter::socketmap_reverse_ok;
        case MapStatus::notfound:
            return fwd ? Counter::socketmap_forward_notfound : Counter::socketmap_reverse_notfound;
        default:
            return fwd ? Counter::socketmap_forward_temp : Counter::socketmap_reverse_temp;
    }
}

}  // namespace

struct SocketmapServer::Conn {
    int fd = -1;
    NetstringReader reader;
    std::string out;               // replies not yet sent, in request order
    std::int64_t last_active = 0;  // steady seconds of the last byte in or out
    bool closing = false;          // close once out is sent
    bool want_write = false;       // armed for EPOLLOUT (and not reading) until out is sent
};

SocketmapServer::SocketmapServer(const PolicyHolder& holder, Metrics& metrics, const Clock& clock)
    : holder_(holder), metrics_(metrics), clock_(clock) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_ < 0 || wake_ < 0) {
        if (epoll_ >= 0) close(epoll_);
        if (wake_ >= 0) close(wake_);
        throw std::runtime_error(std::string("socketmap: epoll/eventfd: ") + std::strerror(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &wake_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
}

SocketmapServer::~SocketmapServer() {
    for (auto& [fd, c] : conns_) {
        close(fd);
        delete c;
    }
    close(epoll_);
    close(wake_);
}

void SocketmapServer::stop() {
    stop_ = true;
    std::uint64_t one = 1;
    if (write(wake_, &one, sizeof one) < 0) {
        // Only when the counter is full: a wake-up is pending anyway.
    }
}

void SocketmapServer::serve(int listener) {
    listener_ = listener;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &listener_;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, listener_, &ev) != 0) {
        close(listener_);
        throw std::runtime_error(std::string("socketmap: epoll_ctl: ") + std::strerror(errno));
    }
    epoll_event events[64];
    std::int64_t last_sweep = steady_seconds();
    while (!stop_.load()) {
        const int n = epoll_wait(epoll_, events, 64, 1000);
        if (n < 0 && errno != EINTR) {
            log(LogLevel::error, std::string("socketmap: epoll_wait: ") + std::strerror(errno));
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        for (int i = 0; i < n && !stop_.load(); ++i) {
            void* tag = events[i].data.ptr;
            if (tag == &wake_) continue;  // stop_ says why
            if (tag == &listener_) {
                accept_all();
                continue;
            }
            auto* c = static_cast<Conn*>(tag);
            // One client's trouble (no memory, say) closes that client only.
            try {
                on_event(c, events[i].events);
            } catch (const std::exception& e) {
                metrics_.add(Counter::errors);
                log(LogLevel::error,
                    std::string("socketmap: internal error, closing a connection: ") + e.what());
                close_conn(c);
            }
        }
        const std::int64_t now = steady_seconds();
        if (now != last_sweep) {
            last_sweep = now;
            sweep_idle();
        }
    }
    epoll_ctl(epoll_, EPOLL_CTL_DEL, listener_, nullptr);
    close(listener_);
    std::vector<Conn*> all;
    for (auto& [fd, c] : conns_) all.push_back(c);
    for (Conn* c : all) close_conn(c);
}

void SocketmapServer::accept_all() {
    auto policy = holder_.get();
    const std::size_t limit =
        policy ? std::size_t(policy->config().socketmap_max_connections) : 1000;
    // A bounded batch per wake-up, so lookups keep flowing during a burst.
    for (int i = 0; i < 64; ++i) {
        const int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
                return;
            log(LogLevel::error, std::string("socketmap: accept: ") + std::strerror(errno));
            // Out of descriptors: let clients wait in the backlog rather than spin.
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            return;
        }
        if (conns_.size() >= limit) {
            // Closed at once: Postfix retries the lookup (or defers the mail). One
            // log line per burst, not one per connection a flood would bring.
            close(fd);
            metrics_.add(Counter::socketmap_connections_refused);
            if (refused_in_burst_++ == 0) {
                log(LogLevel::warning, "socketmap: " + std::to_string(limit) +
                                           " connections open (socketmap-max-connections): "
                                           "closing new ones until some close");
            }
            continue;
        }
        Conn* c = nullptr;
        try {
            c = new Conn;
            c->fd = fd;
            c->last_active = steady_seconds();
            conns_.emplace(fd, c);
        } catch (const std::exception& e) {
            delete c;
            close(fd);
            metrics_.add(Counter::errors);
            log(LogLevel::error, std::string("socketmap: cannot take a connection: ") + e.what());
            return;
        }
        ++open_;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.ptr = c;
        if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            log(LogLevel::error, std::string("socketmap: epoll_ctl: ") + std::strerror(errno));
            close_conn(c);
        }
    }
}

void SocketmapServer::on_event(Conn* c, std::uint32_t events) {
    if (events & EPOLLERR) {
        close_conn(c);
        return;
    }
    if (c->want_write) {
        if (!flush(c)) {
            close_conn(c);
            return;
        }
        if (!c->out.empty()) return;  // still waiting for the client to read
        if (c->closing) {
            close_conn(c);
            return;
        }
        if (!watch(c, false)) return;
    }
    read_and_answer(c);
}

void SocketmapServer::read_and_answer(Conn* c) {
    char buf[65536];
    // A few reads per turn, so one client's pipeline cannot starve the others;
    // epoll is level-triggered and brings us back for the rest.
    for (int turn = 0; turn < 4; ++turn) {
        const ssize_t n = read(c->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            close_conn(c);  // the client went away (or the idle sweep shut it down)
            return;
        }
        c->last_active = steady_seconds();
        c->reader.append(std::string_view(buf, std::size_t(n)));
        std::shared_ptr<const Policy> policy;
        UnixTime now = 0;
        while (auto data = c->reader.next()) {
            if (!policy) {
                policy = holder_.get();
                now = clock_.now();
            }
            SocketmapExchange x;
            if (policy) {
                x = answer_request(*policy, *data, now);
            } else {
                x.request = split_request(*data);
                x.answer = {MapStatus::temp, "no configuration loaded", {}};
            }
            metrics_.add(counter_for(x.request.name, x.answer.status));
            if (log_enabled(LogLevel::debug)) {
                std::string line = "socketmap: " + shown(x.request.name) + " " +
                                   shown(x.request.key) + " -> " + to_string(x.answer.status);
                if (x.answer.status == MapStatus::notfound) {
                    line += " (" + x.answer.why + ")";
                } else {
                    line += " " + x.answer.value;
                }
                log(LogLevel::debug, line);
            }
            if (x.answer.status == MapStatus::temp)
                log(LogLevel::error, "socketmap: " + shown(x.request.name) + " " +
                                         shown(x.request.key) + ": " + x.answer.value);
            append_reply(c->out, x.answer);
        }
        if (c->reader.error() != NetstringReader::Error::none) {
            // No way back into step with this client: answer what can be answered
            // and close.
            metrics_.add(Counter::socketmap_bad_request);
            log(LogLevel::warning,
                std::string("socketmap: ") + c->reader.error_text() + ", closing the connection");
            if (c->reader.error() == NetstringReader::Error::too_long)
                append_reply(c->out, {MapStatus::perm, "request too long", {}});
            c->closing = true;
        }
        if (!flush(c)) {
            close_conn(c);
            return;
        }
        if (!c->out.empty()) {
            watch(c, true);  // the client is not reading: read nothing more until it does
            return;
        }
        if (c->closing) {
            close_conn(c);
            return;
        }
        if (std::size_t(n) < sizeof buf) return;  // the socket is empty
    }
}

bool SocketmapServer::flush(Conn* c) {
    std::size_t off = 0;
    while (off < c->out.size()) {
        const ssize_t n = send(c->fd, c->out.data() + off, c->out.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += std::size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        c->out.clear();
        return false;
    }
    if (off > 0) c->last_active = steady_seconds();
    c->out.erase(0, off);
    return true;
}

bool SocketmapServer::watch(Conn* c, bool want_write) {
    c->want_write = want_write;
    epoll_event ev{};
    ev.events = want_write ? EPOLLOUT : (EPOLLIN | EPOLLRDHUP);
    ev.data.ptr = c;
    if (epoll_ctl(epoll_, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        log(LogLevel::error, std::string("socketmap: epoll_ctl: ") + std::strerror(errno));
        close_conn(c);
        return false;
    }
    return true;
}

void SocketmapServer::close_conn(Conn* c) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, c->fd, nullptr);
    close(c->fd);
    conns_.erase(c->fd);
    delete c;
    --open_;
    if (refused_in_burst_ > 0) {
        auto policy = holder_.get();
        const std::size_t limit =
            policy ? std::size_t(policy->config().socketmap_max_connections) : 1000;
        if (conns_.size() < limit) {
            log(LogLevel::info, "socketmap: below socketmap-max-connections again; " +
                                    std::to_string(refused_in_burst_) +
                                    " connection(s) were closed at once");
            refused_in_burst_ = 0;
        }
    }
}

void SocketmapServer::sweep_idle() {
    auto policy = holder_.get();
    const std::int64_t timeout = policy ? policy->config().socketmap_idle_timeout : 60;
    const std::int64_t now = steady_seconds();
    std::vector<Conn*> idle;
    for (auto& [fd, c] : conns_) {
        if (now - c->last_active > timeout) idle.push_back(c);
    }
    // Postfix reconnects when it needs the map again.
    for (Conn* c : idle) close_conn(c);
}

}  // namespace backstop::milter
