// milter_load: drives a running milter over its socket with N concurrent MTA
// connections, each running whole transactions back to back, and prints
// transactions/s, the round-trip latency of every answered command, and the
// milter's CPU time and RSS.
//   milter_load HOST PORT CONNECTIONS SECONDS [MILTER_PID] [outbound|bounce|mixed]
//               [VALID_TAG] [THREADS] [RATE]
// HOST unix:/PATH: a unix socket (PORT is then ignored).
// RATE (transactions/s over all connections, default 0 = as fast as answers come):
// each connection starts its messages on a fixed schedule instead of back to back,
// so the latencies show what a command waits at that load, not the queue a
// saturated closed loop builds (at N connections and zero think time, every
// command waits behind N-1 others whatever the milter does).
// Each connection speaks as Postfix does: negotiation offering every step and every
// no-reply flag, connect, then per message MAIL, RCPT, 4 headers, end of headers, a
// 4 KB body and end of message, waiting for an answer only where the milter said it
// would give one. Steps without an answer go out with the next command that has one.
// Outbound: a local sender signed with BATV (the client is 127.0.0.1, internal).
// Bounce: null sender to an unsigned address (refused at RCPT, then ABORT) or to a
// valid tag (accepted, rewritten at end of message), half and half. Mixed: half the
// connections of each kind.
//
// The generator is event-driven (one epoll loop per thread, default 1 thread), so on
// a small machine it takes little of the CPU the milter is measured on.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "protocol.hpp"

namespace proto = backstop::milter::proto;
using Clock = std::chrono::steady_clock;

namespace {

// SMFIP_* flags the generator offers, as Postfix does (every NO* and NR* step).
constexpr std::uint32_t kOfferSteps = 0x1ff | 0x200 | 0x400 | 0x1000 | 0x2000 | 0x4000 | 0x8000 |
                                      0x10000 | 0x20000 | 0x40000 | 0x80000;
constexpr std::uint32_t kOfferActions = 0x1ff;

enum NoReply : std::uint32_t {
    nr_connect = 0x1000,
    nr_mail = 0x4000,
    nr_rcpt = 0x8000,
    nr_header = 0x80,
    nr_eoh = 0x40000,
    nr_body = 0x80000,
};
enum NoStep : std::uint32_t {
    no_connect = 0x01,
    no_mail = 0x04,
    no_rcpt = 0x08,
    no_body = 0x10,
    no_headers = 0x20,
    no_eoh = 0x40,
};

long read_proc_status_kib(int pid, const char* key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string k;
    while (in >> k) {
        if (k == key) {
            long v = 0;
            in >> v;
            return v;
        }
        std::string rest;
        std::getline(in, rest);
    }
    return -1;
}

double cpu_seconds(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    // Fields after the command name (which may hold spaces) start after ')'.
    auto pos = line.rfind(')');
    if (pos == std::string::npos) return 0;
    std::vector<std::string> f;
    std::string cur;
    for (char c : line.substr(pos + 2)) {
        if (c == ' ') {
            f.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    if (f.size() < 13) return 0;
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    return double(std::stol(f[11]) + std::stol(f[12])) / double(sysconf(_SC_CLK_TCK));
}

void macro_packet(std::string& out, char command, std::initializer_list<std::string_view> kv) {
    std::string data(1, command);
    for (auto s : kv) data.append(s).push_back('\0');
    proto::append_packet(out, proto::cmd::macro, data);
}

struct Conn {
    int fd = -1;
    bool bounce = false;
    std::uint32_t steps = 0;  // agreed protocol flags
    // The script of the current phase: packets to send, each with whether an answer
    // is awaited after it.
    struct Step {
        std::string bytes;
        bool awaits = false;
        bool is_eom = false;
        bool is_rcpt = false;
    };
    std::vector<Step> script;
    std::size_t next = 0;   // next step to send
    bool waiting = false;   // an answer is awaited
    bool eom_wait = false;  // the awaited answer is end of message's (modifications first)
    bool rcpt_wait = false;
    bool negotiated = false;
    bool connected = false;  // the connect step went out
    Clock::time_point sent;
    proto::PacketReader reader;
    std::string out;
    long n = 0;             // messages started on this connection
    Clock::time_point due;  // RATE: when the next message starts
    bool idle = false;      // RATE: waiting for 'due'
};

struct Totals {
    long transactions = 0;
    long errors = 0;
    std::vector<float> rtt_us;
};

class Driver {
  public:
    Driver(const std::string& host, std::uint16_t port, std::vector<bool> kinds, std::string tag,
           Clock::time_point until, double interval_s)
        : host_(host),
          port_(port),
          kinds_(std::move(kinds)),
          tag_(std::move(tag)),
          until_(until),
          interval_(std::chrono::duration_cast<Clock::duration>(
              std::chrono::duration<double>(interval_s))) {}

    void run(Totals& totals) {
        ep_ = epoll_create1(0);
        for (bool bounce : kinds_) {
            auto c = std::make_unique<Conn>();
            c->bounce = bounce;
            c->fd = connect_to();
            if (c->fd < 0) {
                ++totals.errors;
                continue;
            }
            std::string offer;
            std::string d;
            auto put = [&d](std::uint32_t v) {
                const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
                d.append(b, 4);
            };
            put(6);
            put(kOfferActions);
            put(kOfferSteps);
            proto::append_packet(offer, proto::cmd::negotiate, d);
            c->out = offer;
            c->waiting = true;
            c->idle = false;
            c->sent = Clock::now();
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT;
            ev.data.ptr = c.get();
            epoll_ctl(ep_, EPOLL_CTL_ADD, c->fd, &ev);
            conns_.push_back(std::move(c));
        }
        totals_ = &totals;
        const auto start = Clock::now();
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            conns_[i]->due =
                start + interval_ * long(i) / long(std::max<std::size_t>(1, conns_.size()));
        }
        epoll_event events[256];
        while (Clock::now() < until_ && live_ > 0) {
            // RATE: start the messages that are due; sleep at most until the next one.
            auto wake = Clock::now() + std::chrono::milliseconds(100);
            if (interval_.count() > 0) {
                const auto now = Clock::now();
                for (auto& c : conns_) {
                    if (c->fd < 0 || !c->idle) continue;
                    if (c->due <= now) {
                        c->idle = false;
                        start_message(*c);
                    } else {
                        wake = std::min(wake, c->due);
                    }
                }
            }
            const auto wait = std::max(Clock::duration::zero(), wake - Clock::now());
            timespec ts{};
            ts.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(wait).count();
            ts.tv_nsec = long((wait - std::chrono::seconds(ts.tv_sec)).count());
            int k = epoll_pwait2(ep_, events, 256, &ts, nullptr);
            for (int i = 0; i < k; ++i) {
                auto* c = static_cast<Conn*>(events[i].data.ptr);
                if (c->fd < 0) continue;
                if (events[i].events & EPOLLOUT) write_some(*c);
                if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_some(*c);
            }
        }
        for (auto& c : conns_) {
            if (c->fd >= 0) close(c->fd);
        }
        close(ep_);
    }

  private:
    int connect_to() {
        const bool local = host_.rfind("unix:", 0) == 0;
        int fd = socket(local ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
        sockaddr_storage a{};
        socklen_t len = 0;
        if (local) {
            auto& u = reinterpret_cast<sockaddr_un&>(a);
            u.sun_family = AF_UNIX;
            std::snprintf(u.sun_path, sizeof u.sun_path, "%s", host_.c_str() + 5);
            len = sizeof u;
        } else {
            auto& in = reinterpret_cast<sockaddr_in&>(a);
            in.sin_family = AF_INET;
            in.sin_port = htons(port_);
            inet_pton(AF_INET, host_.c_str(), &in.sin_addr);
            len = sizeof in;
        }
        if (connect(fd, reinterpret_cast<sockaddr*>(&a), len) != 0) {
            std::perror("milter_load: connect");
            close(fd);
            return -1;
        }
        int one = 1;
        if (!local) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl_nonblock(fd);
        ++live_;
        return fd;
    }
    static void fcntl_nonblock(int fd) {
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }

    void fail(Conn& c, const char* why) {
        if (totals_->errors++ < 5) std::fprintf(stderr, "milter_load: %s\n", why);
        close(c.fd);
        c.fd = -1;
        --live_;
    }

    void write_some(Conn& c) {
        while (!c.out.empty()) {
            ssize_t w = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
            if (w > 0) {
                c.out.erase(0, std::size_t(w));
                continue;
            }
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
            fail(c, "send failed");
            return;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | (c.out.empty() ? 0u : unsigned(EPOLLOUT));
        ev.data.ptr = &c;
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    }

    void read_some(Conn& c) {
        char buf[16384];
        for (;;) {
            ssize_t r = recv(c.fd, buf, sizeof buf, 0);
            if (r > 0) {
                c.reader.append(std::string_view(buf, std::size_t(r)));
                while (auto p = c.reader.next()) {
                    on_packet(c, *p);
                    if (c.fd < 0) return;
                }
                if (!c.reader.error().empty()) return fail(c, "bad packet from the milter");
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
            return fail(c, "the milter closed the connection");
        }
    }

    // Builds the steps of one message (and, the first time, the connect).
    void start_message(Conn& c) {
        const bool with_connect = !c.connected;
        c.connected = true;
        c.script.clear();
        c.next = 0;
        const long n = c.n++;
        auto awaits = [&](std::uint32_t no_step, std::uint32_t no_reply) {
            return !(c.steps & no_step) && !(c.steps & no_reply);
        };
        auto skipped = [&](std::uint32_t no_step) { return (c.steps & no_step) != 0; };
        if (with_connect && !skipped(no_connect)) {
            Conn::Step s;
            const char* addr = c.bounce ? "198.51.100.7" : "127.0.0.1";
            std::string d = "client.example";
            d.push_back('\0');
            d.push_back('4');
            d.push_back(char(0x9c));
            d.push_back(char(0x40));
            d.append(addr).push_back('\0');
            proto::append_packet(s.bytes, proto::cmd::connect, d);
            s.awaits = awaits(no_connect, nr_connect);
            c.script.push_back(std::move(s));
        }
        const std::string sender = c.bounce ? "<>" : "<alice@ours.example>";
        std::string rcpt = "<bob@remote.example>";
        if (c.bounce) rcpt = n % 2 == 0 ? "<alice@ours.example>" : "<" + tag_ + ">";
        {
            Conn::Step s;
            macro_packet(s.bytes, proto::cmd::mail, {});
            proto::append_strings_packet(s.bytes, proto::cmd::mail, {sender, "SIZE=4200"});
            s.awaits = awaits(no_mail, nr_mail);
            c.script.push_back(std::move(s));
        }
        {
            Conn::Step s;
            proto::append_strings_packet(s.bytes, proto::cmd::rcpt, {rcpt});
            s.awaits = awaits(no_rcpt, nr_rcpt);
            s.is_rcpt = true;
            c.script.push_back(std::move(s));
        }
        const std::string id = "<" + std::to_string(n) + "." + std::to_string(c.fd) + "@load>";
        const std::pair<const char*, std::string> headers[] = {
            {"From", "Alice <alice@ours.example>"},
            {"To", "bob@remote.example"},
            {"Subject", "load test " + std::to_string(n)},
            {"Message-ID", id}};
        if (!skipped(no_headers)) {
            for (auto& [name, value] : headers) {
                Conn::Step s;
                proto::append_strings_packet(s.bytes, proto::cmd::header, {name, value});
                s.awaits = awaits(no_headers, nr_header);
                c.script.push_back(std::move(s));
            }
        }
        if (!skipped(no_eoh)) {
            Conn::Step s;
            proto::append_packet(s.bytes, proto::cmd::end_of_headers);
            s.awaits = awaits(no_eoh, nr_eoh);
            c.script.push_back(std::move(s));
        }
        if (!skipped(no_body)) {
            Conn::Step s;
            proto::append_packet(s.bytes, proto::cmd::body, std::string(4000, 'x') + "\r\n");
            s.awaits = awaits(no_body, nr_body);
            c.script.push_back(std::move(s));
        }
        {
            Conn::Step s;
            macro_packet(s.bytes, proto::cmd::end_of_message, {"i", "Q" + std::to_string(n)});
            proto::append_packet(s.bytes, proto::cmd::end_of_message);
            s.awaits = true;
            s.is_eom = true;
            c.script.push_back(std::move(s));
        }
        send_steps(c);
    }

    // Sends steps up to and including the next one that awaits an answer.
    void send_steps(Conn& c) {
        while (c.next < c.script.size()) {
            Conn::Step& s = c.script[c.next++];
            c.out.append(s.bytes);
            if (s.awaits) {
                c.waiting = true;
                c.eom_wait = s.is_eom;
                c.rcpt_wait = s.is_rcpt;
                c.sent = Clock::now();
                break;
            }
        }
        write_some(c);
    }

    void on_packet(Conn& c, const proto::Packet& p) {
        if (!c.waiting) return fail(c, "an answer nobody asked for");
        if (!c.negotiated) {
            auto agreed = proto::parse_offer(p.data);
            if (p.command != 'O' || !agreed) return fail(c, "bad negotiation reply");
            c.steps = agreed->steps;
            c.negotiated = true;
            c.waiting = false;
            if (interval_.count() > 0) {
                // The connect goes out with the first message, when it is due.
                c.idle = true;
                return;
            }
            start_message(c);
            return;
        }
        // Modifications come before the end of message's final answer.
        if (c.eom_wait &&
            (p.command == '+' || p.command == '-' || p.command == 'e' || p.command == 'h' ||
             p.command == 'm' || p.command == 'i' || p.command == '2' || p.command == 'p')) {
            return;
        }
        totals_->rtt_us.push_back(
            float(std::chrono::duration<double, std::micro>(Clock::now() - c.sent).count()));
        c.waiting = false;
        const bool refused = p.command == 'r' || p.command == 't' || p.command == 'y' ||
                             p.command == 'd' || p.command == 'a';
        if (c.eom_wait || refused) {
            // A refused sole recipient ends the message too: abort it.
            ++totals_->transactions;
            if (!c.eom_wait) {
                proto::append_packet(c.out, proto::cmd::abort);
                write_some(c);
            }
            if (Clock::now() >= until_) return;
            if (interval_.count() > 0) {
                c.due += interval_;
                c.idle = true;  // started by the loop when due (at once if late)
                return;
            }
            start_message(c);
            return;
        }
        send_steps(c);
    }

    std::string host_;
    std::uint16_t port_;
    std::vector<bool> kinds_;
    std::string tag_;
    Clock::time_point until_;
    Clock::duration interval_;  // RATE: between two messages of one connection; 0: none
    int ep_ = -1;
    int live_ = 0;
    std::vector<std::unique_ptr<Conn>> conns_;
    Totals* totals_ = nullptr;
};

double percentile(std::vector<float>& v, double p) {
    if (v.empty()) return 0;
    std::size_t k = std::min(v.size() - 1, std::size_t(p * double(v.size())));
    std::nth_element(v.begin(), v.begin() + long(k), v.end());
    return v[k];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr,
                     "usage: milter_load HOST PORT CONNECTIONS SECONDS [MILTER_PID] "
                     "[outbound|bounce|mixed] [VALID_TAG] [THREADS] [RATE]\n"
                     "  HOST: an IPv4 address, or unix:/PATH (PORT ignored)\n");
        return 2;
    }
    const std::string host = argv[1];
    const auto port = std::uint16_t(std::atoi(argv[2]));
    const int conns = std::atoi(argv[3]);
    const double seconds = std::atof(argv[4]);
    const int pid = argc > 5 ? std::atoi(argv[5]) : 0;
    const std::string mode = argc > 6 ? argv[6] : "outbound";
    const std::string tag = argc > 7 ? argv[7] : "prvs=0000000000=alice@ours.example";
    const int threads = std::max(1, argc > 8 ? std::atoi(argv[8]) : 1);
    const double rate = argc > 9 ? std::atof(argv[9]) : 0;
    const double interval = rate > 0 ? double(conns) / rate : 0;

    const auto start = Clock::now();
    const auto until =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    const double cpu0 = pid > 0 ? cpu_seconds(pid) : 0;
    std::vector<Totals> totals(static_cast<std::size_t>(threads));
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        std::vector<bool> kinds;
        for (int i = t; i < conns; i += threads) {
            kinds.push_back(mode == "bounce" || (mode == "mixed" && i % 2 == 1));
        }
        workers.emplace_back([&, t, kinds] {
            Driver d(host, port, kinds, tag, until, interval);
            d.run(totals[std::size_t(t)]);
        });
    }
    // RSS while every connection is open and busy.
    long rss = -1;
    if (pid > 0) {
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds / 2));
        rss = read_proc_status_kib(pid, "VmRSS:");
    }
    for (auto& w : workers) w.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu1 = pid > 0 ? cpu_seconds(pid) : 0;

    Totals all;
    for (auto& t : totals) {
        all.transactions += t.transactions;
        all.errors += t.errors;
        all.rtt_us.insert(all.rtt_us.end(), t.rtt_us.begin(), t.rtt_us.end());
    }
    const double p50 = percentile(all.rtt_us, 0.50), p99 = percentile(all.rtt_us, 0.99);
    std::printf(
        "connections=%d mode=%s rate=%s transactions=%ld errors=%ld tps=%.0f callback_p50_us=%.1f "
        "callback_p99_us=%.1f",
        conns, mode.c_str(), rate > 0 ? std::to_string(long(rate)).c_str() : "max",
        all.transactions, all.errors, double(all.transactions) / elapsed, p50, p99);
    if (pid > 0 && all.transactions > 0) {
        std::printf(" milter_cpu_us_per_tx=%.1f", (cpu1 - cpu0) * 1e6 / double(all.transactions));
    }
    if (rss >= 0) std::printf(" milter_rss_mib=%.1f", double(rss) / 1024.0);
    std::printf("\n");
    return all.errors == 0 ? 0 : 1;
}
