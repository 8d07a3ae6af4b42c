// The socketmap server: the MTA's lookups in the maps forward and reverse
// (socketmap_protocol.hpp). One thread accepts; each connection is served by a
// thread of its own, blocked in read until a request comes, so a lookup costs a
// read and a write and nothing else. An event loop would add an epoll_wait to
// every lookup: with one request outstanding, as Postfix asks, that cost 15-20 %
// of the lookup rate (docs/PERFORMANCE.md). Postfix opens one connection per
// process that uses the map, so there are a few hundred at most, and
// socketmap-max-connections bounds them. The MTA may pipeline requests; answers go
// back in order. Each lookup uses the current Policy, so a reload applies to the
// next one; so does socketmap-max-connections, and socketmap-idle-timeout from a
// connection's next wait.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_set>

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

    // Serves on listener (non-blocking, owned from now on) until stop(); then closes
    // the listener, ends every connection and waits for their threads. Never throws
    // once the loop runs.
    void serve(int listener);
    // From any thread (not from a signal handler); serve() returns soon after.
    void stop();

    // Open connections, for tests and logs.
    std::size_t connections() const { return open_.load(); }

  private:
    struct Start;

    void accept_all();
    // A connection's thread: serves fd until the client leaves, idles out, breaks
    // the protocol or stop() ends it; then closes fd.
    void run(int fd);
    void serve_connection(int fd);
    // Answers the whole requests the reader holds into out; false when the
    // connection must close once out is sent.
    bool answer_all(const Policy* policy, NetstringReader& reader, std::string& out);
    void closed(int fd);

    const PolicyHolder& holder_;
    Metrics& metrics_;
    const Clock& clock_;
    int epoll_ = -1;
    int wake_ = -1;  // eventfd: stop()
    int listener_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> open_{0};

    std::mutex mutex_;  // guards what follows
    std::condition_variable all_closed_;
    std::unordered_set<int> fds_;         // open connections: stop() shuts them down
    bool ending_ = false;                 // serve() is ending every connection
    std::uint64_t refused_in_burst_ = 0;  // connections refused since the limit was hit
};

}  // namespace backstop::milter
