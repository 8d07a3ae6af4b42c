// Threads for the commands that may wait on something outside the process (an SPF
// lookup, a Redis or SQLite state store), so the event loops never block on them.
// Grows on demand up to a limit: with a slow store, each waiting command holds
// one thread, as a thread per connection would, but only while it waits.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace backstop::milter {

class WorkerPool {
  public:
    explicit WorkerPool(std::size_t max_threads) : max_threads_(max_threads) {}
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Runs task on a pool thread; tasks beyond the limit wait in order.
    void post(std::function<void()> task);
    // Lets the tasks already posted finish, then ends every thread. Nothing may be
    // posted after; the destructor does it too.
    void join();
    std::size_t threads() const;

  private:
    void run();

    const std::size_t max_threads_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> tasks_;
    std::vector<std::thread> threads_;
    std::size_t idle_ = 0;
    bool stopping_ = false;
};

}  // namespace backstop::milter
