// WorkerPool (milter/native/worker_pool.hpp): the elastic pool for commands that may block.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "worker_pool.hpp"

namespace {

using namespace std::chrono_literals;
using backstop::milter::WorkerPool;

// A gate the tasks wait at until opened.
class Gate {
  public:
    void wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        ++waiting_;
        changed_.notify_all();
        changed_.wait(lock, [this] { return open_; });
    }
    bool wait_for_waiting(int n) {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, 60s, [&] { return waiting_ >= n; });
    }
    void open() {
        std::lock_guard<std::mutex> lock(mutex_);
        open_ = true;
        changed_.notify_all();
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    int waiting_ = 0;
    bool open_ = false;
};

TEST(WorkerPool, RunsEveryTask) {
    std::atomic<int> done{0};
    {
        WorkerPool pool(4);
        for (int i = 0; i < 200; ++i) pool.post([&] { ++done; });
        EXPECT_LE(pool.threads(), 4u);
    }  // the destructor lets the queue drain
    EXPECT_EQ(done.load(), 200);
}

TEST(WorkerPool, GrowsForABurstOfBlockingTasksUpToItsLimit) {
    Gate gate;
    std::atomic<int> done{0};
    WorkerPool pool(3);
    EXPECT_EQ(pool.threads(), 0u);  // none until needed
    for (int i = 0; i < 3; ++i)
        pool.post([&] {
            gate.wait();
            ++done;
        });
    ASSERT_TRUE(gate.wait_for_waiting(3));  // three at once: three threads
    EXPECT_EQ(pool.threads(), 3u);
    // Beyond the limit, tasks wait in order for a thread.
    std::mutex order_mutex;
    std::vector<int> order;
    for (int i = 0; i < 5; ++i) {
        pool.post([&, i] {
            std::lock_guard<std::mutex> lock(order_mutex);
            order.push_back(i);
        });
    }
    EXPECT_EQ(pool.threads(), 3u);
    gate.open();
    pool.join();
    EXPECT_EQ(done.load(), 3);
    EXPECT_EQ(order.size(), 5u);
    EXPECT_EQ(pool.threads(), 0u);
}

TEST(WorkerPool, JoinWaitsForTheRunningTask) {
    Gate gate;
    std::atomic<bool> finished{false};
    WorkerPool pool(2);
    pool.post([&] {
        gate.wait();
        finished = true;
    });
    ASSERT_TRUE(gate.wait_for_waiting(1));
    std::thread opener([&] {
        std::this_thread::sleep_for(100ms);
        gate.open();
    });
    pool.join();
    EXPECT_TRUE(finished.load());
    opener.join();
    pool.join();  // twice is fine
}

}  // namespace
