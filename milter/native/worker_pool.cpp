#include "worker_pool.hpp"

#include <system_error>

namespace backstop::milter {

WorkerPool::~WorkerPool() {
    join();
}

void WorkerPool::join() {
    std::vector<std::thread> threads;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        threads.swap(threads_);
    }
    wake_.notify_all();
    for (auto& t : threads) t.join();
}

void WorkerPool::post(std::function<void()> task) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        tasks_.push_back(std::move(task));
        // Queued tasks are counted against idle threads, so a burst gets threads.
        if (idle_ < tasks_.size() && threads_.size() < max_threads_) {
            try {
                threads_.emplace_back([this] { run(); });
            } catch (const std::system_error&) {
                // No new thread (a resource limit): the threads there are take the
                // task in turn. With none at all, the caller must know.
                if (threads_.empty()) {
                    tasks_.pop_back();
                    throw;
                }
            }
        }
    }
    wake_.notify_one();
}

std::size_t WorkerPool::threads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return threads_.size();
}

void WorkerPool::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        ++idle_;
        wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        --idle_;
        if (tasks_.empty()) return;  // stopping
        auto task = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        task();
        lock.lock();
    }
}

}  // namespace backstop::milter
