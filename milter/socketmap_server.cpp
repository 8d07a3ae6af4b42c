#include "socketmap_server.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "log.hpp"

namespace backstop::milter {

namespace {

// A connection thread's stack: a lookup needs a few KiB beside the 16 KiB read
// buffer (more under the sanitizers), and a thousand connections must not reserve
// 8 MiB each. Only the pages touched take memory.
constexpr std::size_t kThreadStack = 512 * 1024;

int idle_timeout(const Policy* policy) {
    return policy ? policy->config().socketmap_idle_timeout : 60;
}

// The socket's read and write timeouts: a client that sends nothing, or reads
// nothing, for this long is closed.
void set_timeouts(int fd, int seconds) {
    timeval tv{};
    tv.tv_sec = seconds;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Sends all of out; false when the client is gone or read nothing for the timeout.
bool send_all(int fd, const std::string& out) {
    std::size_t off = 0;
    while (off < out.size()) {
        const ssize_t n = send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += std::size_t(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return false;
        }
    }
    return true;
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

struct SocketmapServer::Start {
    SocketmapServer* server;
    int fd;
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
    epoll_event events[2];
    while (!stop_.load()) {
        const int n = epoll_wait(epoll_, events, 2, -1);
        if (n < 0 && errno != EINTR) {
            log(LogLevel::error, std::string("socketmap: epoll_wait: ") + std::strerror(errno));
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        for (int i = 0; i < n && !stop_.load(); ++i) {
            if (events[i].data.ptr == &listener_) accept_all();
        }
    }
    epoll_ctl(epoll_, EPOLL_CTL_DEL, listener_, nullptr);
    close(listener_);
    // End every connection (a thread blocked in read or send returns at once) and
    // wait: the threads use this object until they are done.
    std::unique_lock<std::mutex> lock(mutex_);
    ending_ = true;
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    all_closed_.wait(lock, [this] { return fds_.empty(); });
}

void SocketmapServer::accept_all() {
    auto policy = holder_.get();
    const std::size_t limit =
        policy ? std::size_t(policy->config().socketmap_max_connections) : 1000;
    // A bounded batch per wake-up, so that stop() is seen during a burst.
    for (int i = 0; i < 64; ++i) {
        // Without SOCK_NONBLOCK: the connection's thread blocks on it.
        const int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
                return;
            log(LogLevel::error, std::string("socketmap: accept: ") + std::strerror(errno));
            // Out of descriptors: let clients wait in the backlog rather than spin.
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            return;
        }
        try {
            std::lock_guard<std::mutex> lock(mutex_);
            if (fds_.size() >= limit) {
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
            fds_.insert(fd);
            ++open_;
        } catch (const std::exception& e) {
            close(fd);
            metrics_.add(Counter::errors);
            log(LogLevel::error, std::string("socketmap: cannot take a connection: ") + e.what());
            return;
        }
        auto* start = new (std::nothrow) Start{this, fd};
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, kThreadStack);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t thread;
        const int e = start ? pthread_create(
                                  &thread, &attr,
                                  [](void* arg) -> void* {
                                      std::unique_ptr<Start> s(static_cast<Start*>(arg));
                                      s->server->run(s->fd);
                                      return nullptr;
                                  },
                                  start)
                            : ENOMEM;
        pthread_attr_destroy(&attr);
        if (e != 0) {
            delete start;
            metrics_.add(Counter::errors);
            log(LogLevel::error,
                std::string("socketmap: no thread for a connection: ") + std::strerror(e));
            closed(fd);
        }
    }
}

void SocketmapServer::run(int fd) {
    // One client's trouble (no memory, say) closes that client only; nothing may
    // leave a thread.
    try {
        serve_connection(fd);
    } catch (const std::exception& e) {
        metrics_.add(Counter::errors);
        try {
            log(LogLevel::error,
                std::string("socketmap: internal error, closing a connection: ") + e.what());
        } catch (...) {
        }
    } catch (...) {
        metrics_.add(Counter::errors);
    }
    closed(fd);
}

void SocketmapServer::serve_connection(int fd) {
    NetstringReader reader;
    std::string out;
    auto policy = holder_.get();
    int armed = 0;  // seconds the socket's timeouts are set to
    int idle = 0;   // seconds of idleness waited out by reads that timed out
    char buf[16384];
    for (;;) {
        // The timeout in force now, less what an earlier read already waited: a
        // reload applies from the next wait.
        const int wait = idle_timeout(policy.get()) - idle;
        if (wait <= 0) return;
        if (wait != armed) set_timeouts(fd, armed = wait);
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            idle += armed;  // Postfix reconnects when it needs the map again
            policy = holder_.get();
            continue;
        }
        if (n <= 0) return;  // the client went away, or stop() shut the socket down
        idle = 0;
        reader.append(std::string_view(buf, std::size_t(n)));
        policy = holder_.get();
        const bool keep = answer_all(policy.get(), reader, out);
        if (!out.empty() && !send_all(fd, out)) return;
        out.clear();
        if (!keep) return;
    }
}

bool SocketmapServer::answer_all(const Policy* policy, NetstringReader& reader, std::string& out) {
    UnixTime now = 0;
    bool have_now = false;
    std::shared_ptr<StateStore> state;  // taken once per batch of requests, as the time
    while (auto data = reader.next()) {
        if (!have_now) {
            state = holder_.state();
            now = clock_.now();
            have_now = true;
        }
        SocketmapExchange x;
        if (policy) {
            x = answer_request(*policy, *data, now, state.get());
        } else {
            x.request = split_request(*data);
            x.answer = {MapStatus::temp, "no configuration loaded", {}};
        }
        metrics_.add(counter_for(x.request.name, x.answer.status));
        if (x.answer.alias_written) metrics_.add(Counter::srs_aliases_written);
        if (x.answer.too_long) metrics_.add(Counter::srs_too_long);
        if (log_enabled(LogLevel::debug)) {
            std::string line = "socketmap: " + shown(x.request.name) + " " + shown(x.request.key) +
                               " -> " + to_string(x.answer.status);
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
        append_reply(out, x.answer);
    }
    if (reader.error() == NetstringReader::Error::none) return true;
    // No way back into step with this client: answer what can be answered and close.
    metrics_.add(Counter::socketmap_bad_request);
    log(LogLevel::warning,
        std::string("socketmap: ") + reader.error_text() + ", closing the connection");
    if (reader.error() == NetstringReader::Error::too_long)
        append_reply(out, {MapStatus::perm, "request too long", {}});
    return false;
}

void SocketmapServer::closed(int fd) {
    std::lock_guard<std::mutex> lock(mutex_);
    // Closed under the lock, so stop() never shuts down a number reused meanwhile.
    fds_.erase(fd);
    close(fd);
    --open_;
    if (fds_.empty()) all_closed_.notify_all();
    if (refused_in_burst_ == 0 || ending_) return;
    try {
        auto policy = holder_.get();
        const std::size_t limit =
            policy ? std::size_t(policy->config().socketmap_max_connections) : 1000;
        if (fds_.size() < limit) {
            const std::uint64_t refused = refused_in_burst_;
            refused_in_burst_ = 0;
            log(LogLevel::info, "socketmap: below socketmap-max-connections again; " +
                                    std::to_string(refused) + " connection(s) were closed at once");
        }
    } catch (...) {
        // Only the log line is lost; a connection thread must end cleanly.
    }
}

}  // namespace backstop::milter
