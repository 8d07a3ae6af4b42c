// The socketmap server: the MTA's lookups in the maps forward and reverse
// (socketmap_protocol.hpp), from one epoll loop of its own. A lookup is CPU only
// (HMACs, no store, no DNS) and takes microseconds, so one thread serves every
// connection. The MTA keeps a connection open for many lookups and may pipeline
// them; answers go back in order. Each lookup uses the current Policy, so a reload
// applies to the next one; so do socketmap-idle-timeout and
// socketmap-max-connections.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "backstop/base/clock.hpp"
#include "backstop/base/metrics.hpp"
#include "policy_holder.hpp"
#include "socketmap_protocol.hpp"

namespace backstop::milter {

class SocketmapServer {
  public:
    SocketmapServer(const PolicyHolder& holder, Metrics& metrics, const Clock& clock);
    ~SocketmapServer();
    SocketmapServer(const SocketmapServer&) = delete;
    SocketmapServer& operator=(const SocketmapServer&) = delete;

    // Serves on listener (non-blocking, owned from now on) until stop(), then closes
    // the listener and every connection. Never throws once the loop runs.
    void serve(int listener);
    // From any thread (not from a signal handler); serve() returns soon after.
    void stop();

    // Open connections, for tests and logs.
    std::size_t connections() const { return open_.load(); }

  private:
    struct Conn;

    void accept_all();
    void on_event(Conn* c, std::uint32_t events);
    void read_and_answer(Conn* c);
    // Sends what is pending; false when the client is gone.
    bool flush(Conn* c);
    // Reading, or (want_write) waiting until the client reads; false when that
    // failed and c is closed.
    bool watch(Conn* c, bool want_write);
    void close_conn(Conn* c);
    void sweep_idle();

    const PolicyHolder& holder_;
    Metrics& metrics_;
    const Clock& clock_;
    int epoll_ = -1;
    int wake_ = -1;  // eventfd: stop()
    int listener_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> open_{0};
    std::unordered_map<int, Conn*> conns_;  // by descriptor; the loop thread only
    std::uint64_t refused_in_burst_ = 0;    // connections refused since the limit was hit
};

}  // namespace backstop::milter
