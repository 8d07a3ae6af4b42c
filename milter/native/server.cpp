#include "server.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>

#include "connection.hpp"
#include "engine.hpp"
#include "log.hpp"
#include "protocol.hpp"

namespace backstop::milter {

namespace {

std::int64_t steady_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The listener's and the wake-up descriptor's tags in epoll (connections carry
// their Conn*, never these values).
void* const kListenerTag = reinterpret_cast<void*>(1);
void* const kWakeTag = reinterpret_cast<void*>(2);

}  // namespace

struct Server::Loop {
    int epoll = -1;
    int wake = -1;  // eventfd: stop, or connections handed back in rearm
    std::thread thread;
    std::mutex mutex;  // guards conns (the idle sweep reads it) and rearm
    std::unordered_set<Conn*> conns;
    // Connections a worker is done with, and the events to wait for: the loop
    // re-arms them itself (see arm()).
    std::vector<std::pair<Conn*, unsigned>> rearm;
};

// Owned by exactly one thread at a time: every descriptor is armed EPOLLONESHOT,
// so an event hands the connection to the loop that saw it, and a blocking
// command hands it on to a worker; whoever holds it closes it, or has it re-armed
// (a worker through its loop, see arm()).
struct Server::Conn {
    Conn(const PolicyHolder& h, Metrics& m, const Clock& c) : protocol(h, m, c) {}
    int fd = -1;
    bool tcp = false;
    Loop* loop = nullptr;
    Connection protocol;
    proto::PacketReader reader;
    std::string out;
    std::optional<proto::Packet> pending;  // taken by a worker: runs first
    bool counted_in_message = false;
    std::atomic<std::int64_t> last_active{0};
    // While an end of message waits on a worker: since when (steady_ms(); 0 when
    // not waiting) and when the last SMFIR_PROGRESS went out. The loop sends those
    // (send_progress()), not the owner, so writes to fd take write_mutex.
    std::atomic<std::int64_t> eom_waiting_since{0};
    std::int64_t last_progress = 0;  // under write_mutex
    std::mutex write_mutex;
};

Server::Server(const PolicyHolder& holder, Metrics& metrics, const Clock& clock,
               ServerOptions options)
    : holder_(holder),
      metrics_(metrics),
      clock_(clock),
      options_(options),
      workers_(std::max<std::size_t>(1, options.max_workers)) {}

Server::~Server() {
    for (auto& l : loops_) {
        if (l->thread.joinable()) l->thread.join();
    }
    // A worker may still hold a connection (serve() stops waiting at the grace
    // time): it re-arms or closes it through its Loop, so the workers end first.
    workers_.join();
    // Connections still open when serve() returned: the MTA sees them close.
    for (auto& l : loops_) {
        for (Conn* c : l->conns) {
            close(c->fd);
            delete c;
        }
        l->conns.clear();
        l->rearm.clear();
        if (l->epoll >= 0) close(l->epoll);
        if (l->wake >= 0) close(l->wake);
    }
}

void Server::stop() {
    {
        std::lock_guard<std::mutex> lock(stop_mutex_);
        stopping_ = true;
    }
    stop_wake_.notify_all();
}

void Server::serve(int listener) {
    listener_ = listener;
    std::size_t n = options_.loops;
    if (n == 0) n = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 4);
    for (std::size_t i = 0; i < n; ++i) {
        auto loop = std::make_unique<Loop>();
        loop->epoll = epoll_create1(EPOLL_CLOEXEC);
        loop->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (loop->epoll < 0 || loop->wake < 0) throw std::runtime_error("epoll/eventfd failed");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = kWakeTag;
        epoll_ctl(loop->epoll, EPOLL_CTL_ADD, loop->wake, &ev);
        // Every loop waits on the listener; EPOLLEXCLUSIVE wakes one of them.
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ev.data.ptr = kListenerTag;
        if (epoll_ctl(loop->epoll, EPOLL_CTL_ADD, listener_, &ev) != 0)
            throw std::runtime_error(std::string("epoll_ctl(listener): ") + std::strerror(errno));
        loops_.push_back(std::move(loop));
    }
    for (auto& l : loops_) {
        Loop* lp = l.get();
        l->thread = std::thread([this, lp] { run_loop(*lp); });
    }

    {
        std::unique_lock<std::mutex> lock(stop_mutex_);
        stop_wake_.wait(lock, [this] { return stopping_; });
    }
    // Stop accepting; the MTA's next connection is refused and it applies its
    // milter_default_action (tempfail) until we are back.
    // The descriptor stays open until the loops are gone, so its number cannot be
    // reused under an accept still running.
    for (auto& l : loops_) epoll_ctl(l->epoll, EPOLL_CTL_DEL, listener_, nullptr);
    shutdown(listener_, SHUT_RDWR);
    let_messages_finish([this] { return in_message_.load(); }, options_.stop_grace_seconds,
                        "connections");
    loops_stop_ = true;
    for (auto& l : loops_) {
        std::uint64_t one = 1;
        if (write(l->wake, &one, sizeof one) < 0) {
            // The loop also checks the flag at its one-second tick.
        }
    }
    for (auto& l : loops_) {
        if (l->thread.joinable()) l->thread.join();
    }
    close(listener_);
}

void Server::run_loop(Loop& loop) {
    epoll_event events[64];
    std::int64_t last_sweep = steady_seconds();
    while (!loops_stop_.load()) {
        // Wakes at least twice a second: for progress packets, the idle sweep, stop.
        int n = epoll_wait(loop.epoll, events, 64, 500);
        if (n < 0) {
            if (errno == EINTR) continue;
            log(LogLevel::error, std::string("epoll_wait: ") + std::strerror(errno));
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        for (int i = 0; i < n; ++i) {
            void* tag = events[i].data.ptr;
            if (tag == kWakeTag) {
                std::uint64_t v;
                while (read(loop.wake, &v, sizeof v) > 0) {
                }
                std::vector<std::pair<Conn*, unsigned>> back;
                {
                    std::lock_guard<std::mutex> lock(loop.mutex);
                    back.swap(loop.rearm);
                }
                for (auto [c, events] : back) arm(c, events, false);
                continue;
            }
            if (tag == kListenerTag) {
                accept_all(loop);
                continue;
            }
            auto* c = static_cast<Conn*>(tag);
            if (events[i].events & EPOLLOUT) {
                if (!flush(c)) {
                    close_conn(c);
                    continue;
                }
                if (!c->out.empty()) {
                    arm(c, EPOLLOUT, false);
                    continue;
                }
            }
            drive_guarded(c, false);
        }
        const std::int64_t now = steady_seconds();
        send_progress(loop);
        if (now - last_sweep >= 5) {
            last_sweep = now;
            sweep_idle(loop);
        }
    }
}

void Server::accept_all(Loop& loop) {
    // A bounded batch per wake-up, so a burst of connections spreads over the loops.
    for (int i = 0; i < 32; ++i) {
        int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED || errno == EBADF || errno == EINVAL)
                return;
            log(LogLevel::error, std::string("accept: ") + std::strerror(errno));
            // Out of descriptors: let the MTA wait in the backlog rather than spin.
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            return;
        }
        Conn* c = nullptr;
        try {
            c = new Conn(holder_, metrics_, clock_);
            std::lock_guard<std::mutex> lock(loop.mutex);
            loop.conns.insert(c);
        } catch (const std::exception& e) {
            // No memory for one more connection: refuse it, keep serving the others.
            delete c;
            close(fd);
            metrics_.add(Counter::errors);
            log(LogLevel::error, std::string("cannot take a connection: ") + e.what());
            return;
        }
        c->fd = fd;
        c->loop = &loop;
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
            (addr.ss_family == AF_INET || addr.ss_family == AF_INET6)) {
            c->tcp = true;
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        c->last_active = steady_seconds();
        ++connections_;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLONESHOT;
        ev.data.ptr = c;
        if (epoll_ctl(loop.epoll, EPOLL_CTL_ADD, fd, &ev) != 0) {
            log(LogLevel::error, std::string("epoll_ctl(add): ") + std::strerror(errno));
            close_conn(c);
        }
    }
}

// Connection::handle() answers every error of the session itself; what is left
// here (no memory, no thread for a worker) must not end the daemon: that one
// connection is closed and the MTA applies its milter_default_action (tempfail).
void Server::drive_guarded(Conn* c, bool on_worker) {
    try {
        drive(c, on_worker);
        return;
    } catch (const std::exception& e) {
        log(LogLevel::error, std::string("internal error, closing an MTA connection: ") + e.what());
    } catch (...) {
        log(LogLevel::error, "internal error, closing an MTA connection");
    }
    metrics_.add(Counter::errors);
    c->pending.reset();
    close_conn(c);
}

void Server::drive(Conn* c, bool on_worker) {
    char buf[65536];
    bool drained = false;        // the socket had no more bytes at the last read
    bool need_quickack = false;  // bytes came in and no answer has gone out since
    for (;;) {
        if (c->pending) {
            proto::Packet p = *c->pending;
            c->pending.reset();
            handle(c, p);
        }
        while (!c->protocol.finished()) {
            auto p = c->reader.next();
            if (!p) break;
            if (!on_worker && c->protocol.may_block(p->command)) {
                c->pending = *p;
                if (p->command == proto::cmd::end_of_message) start_waiting(c);
                workers_.post([this, c] { drive_guarded(c, true); });
                return;
            }
            handle(c, *p);
        }
        const bool in_message = c->protocol.in_message();
        if (in_message != c->counted_in_message) {
            c->counted_in_message = in_message;
            in_message ? ++in_message_ : --in_message_;
        }
        if (!c->reader.error().empty() && !c->protocol.finished()) {
            log(LogLevel::warning, "protocol error: " + c->reader.error() + ", closing");
            close_conn(c);
            return;
        }
        if (c->protocol.finished()) {
            flush(c);  // what is left (e.g. a tempfail) is worth one try
            close_conn(c);
            return;
        }
        const bool answered = !c->out.empty();
        if (!flush(c)) {
            close_conn(c);
            return;
        }
        if (!c->out.empty()) {
            arm(c, EPOLLOUT, on_worker);  // the MTA is not reading: wait, read nothing more
            return;
        }
        if (answered) {
            need_quickack = false;  // the answer carried the ACK
        } else if (need_quickack) {
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
            need_quickack = false;
        }
        if (drained) {
            // The last read took less than the buffer: the socket is empty. Wait for
            // more instead of asking again (one read that would only say EAGAIN).
            arm(c, EPOLLIN, on_worker);
            return;
        }
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n > 0) {
            c->reader.append(std::string_view(buf, std::size_t(n)));
            c->last_active.store(steady_seconds(), std::memory_order_relaxed);
            drained = std::size_t(n) < sizeof buf;
            // The MTA writes macro packets, which get no answer, just before the
            // command they belong to. Unless an answer of ours carries the ACK, send
            // it now: with Nagle on the MTA's side, its next packet would otherwise
            // wait for our delayed ACK (40 ms on Linux).
            need_quickack = c->tcp;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            arm(c, EPOLLIN, on_worker);
            return;
        }
        close_conn(c);  // EOF or error: the MTA went away
        return;
    }
}

// From here until its answer, an end of message may get progress packets; a worker
// may take it up (posted from a loop) or meet it while it drives the connection.
void Server::start_waiting(Conn* c) {
    std::lock_guard<std::mutex> lock(c->write_mutex);
    if (c->eom_waiting_since.load() != 0) return;
    c->last_progress = 0;
    c->eom_waiting_since = steady_ms();
}

void Server::handle(Conn* c, const proto::Packet& p) {
    const bool eom = p.command == proto::cmd::end_of_message;
    if (eom) start_waiting(c);
    c->protocol.handle(p, c->out);
    if (eom) {
        std::lock_guard<std::mutex> lock(c->write_mutex);
        c->eom_waiting_since = 0;  // no progress after this: the answer follows
    }
}

bool Server::flush(Conn* c) {
    std::lock_guard<std::mutex> lock(c->write_mutex);
    std::size_t off = 0;
    while (off < c->out.size()) {
        ssize_t n = send(c->fd, c->out.data() + off, c->out.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += std::size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        c->out.clear();
        return false;
    }
    c->out.erase(0, off);
    return true;
}

void Server::arm(Conn* c, unsigned events, bool on_worker) {
    if (on_worker) {
        // Hand it back to its loop, which re-arms it: a worker's EPOLL_CTL_MOD would
        // pass the connection to the loop through the kernel alone, an ordering that
        // neither the C++ memory model nor ThreadSanitizer sees. Through the loop's
        // mutex, each hand-off is one they check.
        {
            std::lock_guard<std::mutex> lock(c->loop->mutex);
            c->loop->rearm.emplace_back(c, events);
        }
        std::uint64_t one = 1;
        if (write(c->loop->wake, &one, sizeof one) < 0) {
            // Only when the counter is full: the loop has a wake-up pending anyway.
        }
        return;
    }
    epoll_event ev{};
    ev.events = events | EPOLLONESHOT;
    ev.data.ptr = c;
    if (epoll_ctl(c->loop->epoll, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        log(LogLevel::error, std::string("epoll_ctl(mod): ") + std::strerror(errno));
        close_conn(c);
    }
}

void Server::close_conn(Conn* c) {
    {
        std::lock_guard<std::mutex> lock(c->loop->mutex);
        c->loop->conns.erase(c);
    }
    if (c->counted_in_message) --in_message_;
    epoll_ctl(c->loop->epoll, EPOLL_CTL_DEL, c->fd, nullptr);
    close(c->fd);
    --connections_;
    delete c;
}

// An end of message that waits on a worker (an SPF lookup, a slow store) longer
// than kProgressEveryMs gets SMFIR_PROGRESS about that often, so the MTA's read
// timeout (Sendmail's 10 s) does not run out. Only at end of message: Sendmail takes
// progress there alone, as libmilter's smfi_progress() allows.
void Server::send_progress(Loop& loop) {
    constexpr std::int64_t kProgressEveryMs = 2000;
    static constexpr char kProgress[] = {0, 0, 0, 1, proto::reply::progress};
    const std::int64_t now = steady_ms();
    std::lock_guard<std::mutex> conns_lock(loop.mutex);  // no Conn is deleted meanwhile
    for (Conn* c : loop.conns) {
        if (c->eom_waiting_since.load() == 0) continue;
        std::lock_guard<std::mutex> lock(c->write_mutex);
        const std::int64_t since = c->eom_waiting_since.load();
        if (since == 0 || now - std::max(since, c->last_progress) < kProgressEveryMs) continue;
        const ssize_t n = send(c->fd, kProgress, sizeof kProgress, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == ssize_t(sizeof kProgress)) {
            c->last_progress = now;
            metrics_.add(Counter::milter_progress);
        } else if (n > 0) {
            // Half a packet: the stream is broken. The owner sees the end and closes.
            shutdown(c->fd, SHUT_RDWR);
        }
        // Otherwise the MTA is not reading: try again at the next tick.
    }
}

void Server::sweep_idle(Loop& loop) {
    const std::int64_t now = steady_seconds();
    std::lock_guard<std::mutex> lock(loop.mutex);
    for (Conn* c : loop.conns) {
        if (now - c->last_active.load(std::memory_order_relaxed) > options_.idle_timeout_seconds) {
            // Only the connection's owner closes it: shutting it down makes its next
            // read see the end, whoever holds it now.
            shutdown(c->fd, SHUT_RDWR);
        }
    }
}

}  // namespace backstop::milter
