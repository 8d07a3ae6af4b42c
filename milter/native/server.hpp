// The milter server: event loops (epoll) that accept MTA connections, read their
// packets, run each through its Connection and write the replies. One thread per
// loop, not per connection: a command costs a read and a write, no thread hand-off.
// Commands that may wait on the network (SPF, a Redis or SQLite store) go to a
// WorkerPool so that a slow lookup never stalls the other connections of a loop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "backstop/base/clock.hpp"
#include "backstop/base/metrics.hpp"
#include "policy_holder.hpp"
#include "protocol.hpp"
#include "worker_pool.hpp"

namespace backstop::milter {

struct ServerOptions {
    std::size_t loops = 0;  // event loop threads; 0: one per CPU, at most 4
    // Threads for commands that may block, made as needed: one per connection
    // waiting on a slow lookup, so that none waits behind the others' lookups.
    std::size_t max_workers = 1024;
    int idle_timeout_seconds = 7210;  // as libmilter: a silent MTA connection is closed
    int stop_grace_seconds = 10;      // at stop, how long messages under way may finish
};

class Server {
  public:
    Server(const PolicyHolder& holder, Metrics& metrics, const Clock& clock, ServerOptions options);
    // After serve() returned: waits for commands still running on workers, then
    // closes the MTA connections still open.
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves on listener (non-blocking, owned from now on) until stop(). Then it
    // stops accepting and waits until no message is under way, or the grace time.
    void serve(int listener);
    // From any thread (not from a signal handler).
    void stop();

    // Open MTA connections and those with a message under way, for tests and logs.
    std::size_t connections() const { return connections_.load(); }
    std::size_t messages_in_progress() const { return in_message_.load(); }

  private:
    struct Loop;
    struct Conn;

    void run_loop(Loop& loop);
    void accept_all(Loop& loop);
    void drive(Conn* c, bool on_worker);
    void drive_guarded(Conn* c, bool on_worker);
    void handle(Conn* c, const proto::Packet& p);
    void start_waiting(Conn* c);
    bool flush(Conn* c);
    // Waits for events on c again; on_worker: through c's loop (the caller gives c up).
    void arm(Conn* c, unsigned events, bool on_worker);
    void close_conn(Conn* c);
    void sweep_idle(Loop& loop);
    void send_progress(Loop& loop);

    const PolicyHolder& holder_;
    Metrics& metrics_;
    const Clock& clock_;
    const ServerOptions options_;
    WorkerPool workers_;
    std::vector<std::unique_ptr<Loop>> loops_;
    int listener_ = -1;
    std::atomic<bool> loops_stop_{false};
    std::atomic<std::size_t> connections_{0};
    std::atomic<std::size_t> in_message_{0};
    std::mutex stop_mutex_;
    std::condition_variable stop_wake_;
    bool stopping_ = false;
};

}  // namespace backstop::milter
