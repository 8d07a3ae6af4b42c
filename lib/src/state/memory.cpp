// The in-process store: nothing to install; counters die with the process.
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include "backstop/base/ascii.hpp"
#include "stores.hpp"

namespace backstop {

namespace {

class MemoryStore final : public StateStore {
  public:
    explicit MemoryStore(UnixTime ttl) : ttl_(ttl) {}

    Result<std::uint64_t, Failure> hit(const std::string& key, UnixTime now,
                                       UnixTime window) override {
        std::lock_guard<std::mutex> lock(mutex_);
        auto& times = events_[key];
        times.push_back(now);
        while (!times.empty() && times.front() <= now - window) times.pop_front();
        // A storm far over any sane limit need not be remembered event by event.
        if (times.size() > kMaxEvents) times.pop_front();
        std::uint64_t n = times.size();
        if (++calls_ % 4096 == 0) sweep(now, window);
        return n;
    }

    Result<bool, Failure> record_bounce(const std::string& address, const std::string& status,
                                        const std::string& reason, UnixTime now) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (ttl_ > 0 && ++records_ % 1024 == 0) {
            std::erase_if(bounces_, [&](const auto& kv) {
                return bounce_expired(kv.second.last_seen, now, ttl_);
            });
        }
        BounceRecord& r = bounces_[ascii_lower(address)];
        if (r.count > 0 && bounce_expired(r.last_seen, now, ttl_)) r = BounceRecord{};
        if (r.count == 0) {
            r.address = ascii_lower(address);
            r.first_seen = now;
        }
        r.status = status;
        r.reason = reason;
        r.last_seen = now;
        ++r.count;
        return true;
    }

    Result<std::optional<BounceRecord>, Failure> bounce(const std::string& address,
                                                        UnixTime now) override {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = bounces_.find(ascii_lower(address));
        if (it == bounces_.end() || bounce_expired(it->second.last_seen, now, ttl_))
            return std::optional<BounceRecord>{};
        return std::optional<BounceRecord>{it->second};
    }

    Result<std::vector<BounceRecord>, Failure> bounces(UnixTime now) override {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<BounceRecord> out;
        for (const auto& [k, v] : bounces_) {
            if (!bounce_expired(v.last_seen, now, ttl_)) out.push_back(v);
        }
        return out;
    }

    Result<bool, Failure> forget(const std::string& address) override {
        std::lock_guard<std::mutex> lock(mutex_);
        return bounces_.erase(ascii_lower(address)) > 0;
    }

    // Aliases die with the process: the config refuses original-envelope database and
    // auto with this store; these serve tests and a reverse lookup that finds nothing.
    Result<bool, Failure> put_alias(const std::string& alias, const std::string& sender,
                                    UnixTime now, UnixTime ttl) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (++alias_writes_ % 1024 == 0)
            std::erase_if(aliases_, [&](const auto& kv) { return kv.second.second <= now; });
        aliases_[alias] = {sender, now + ttl};
        return true;
    }

    Result<std::optional<std::string>, Failure> alias(const std::string& alias,
                                                      UnixTime now) override {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = aliases_.find(alias);
        if (it == aliases_.end()) return std::optional<std::string>{};
        if (it->second.second <= now) {
            aliases_.erase(it);
            return std::optional<std::string>{};
        }
        return std::optional<std::string>{it->second.first};
    }

  private:
    static constexpr std::size_t kMaxEvents = 100000;

    // Drops keys whose events have all left the window, so memory stays bounded by
    // the addresses active in one window.
    void sweep(UnixTime now, UnixTime window) {
        for (auto it = events_.begin(); it != events_.end();) {
            if (it->second.empty() || it->second.back() <= now - window) {
                it = events_.erase(it);
            } else {
                ++it;
            }
        }
    }

    std::mutex mutex_;
    std::unordered_map<std::string, std::deque<UnixTime>> events_;
    std::map<std::string, BounceRecord> bounces_;
    std::uint64_t calls_ = 0;
    std::uint64_t records_ = 0;
    std::unordered_map<std::string, std::pair<std::string, UnixTime>> aliases_;  // -> expiry
    std::uint64_t alias_writes_ = 0;
    const UnixTime ttl_;
};

}  // namespace

std::shared_ptr<StateStore> make_memory_store(const StateOptions& options) {
    return std::make_shared<MemoryStore>(options.bounce_ttl);
}

}  // namespace backstop
