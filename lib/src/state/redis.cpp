// The Redis store: every MX of a site shares counters and bounce records. Atomic
// updates (MULTI/EXEC), keys expire on their own, a small connection pool, and a
// deadline on every call so a slow Redis never stalls a milter thread.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "backstop/base/ascii.hpp"
#include "stores.hpp"

namespace backstop {

namespace {

struct Reply {
    redisReply* r = nullptr;
    explicit Reply(void* p) : r(static_cast<redisReply*>(p)) {}
    ~Reply() {
        if (r) freeReplyObject(r);
    }
    Reply(const Reply&) = delete;
    Reply& operator=(const Reply&) = delete;
    bool ok() const { return r && r->type != REDIS_REPLY_ERROR; }
};

class RedisStore final : public StateStore {
  public:
    RedisStore(std::string host, int port, int db, const StateOptions& options, std::size_t pool)
        : host_(std::move(host)),
          port_(port),
          db_(db),
          timeout_ms_(options.timeout_ms),
          ttl_(options.bounce_ttl),
          max_(pool) {}

    ~RedisStore() override {
        for (redisContext* c : idle_) redisFree(c);
    }

    Result<std::uint64_t, Failure> hit(const std::string& key, UnixTime now,
                                       UnixTime window) override {
        Lease l(*this);
        if (!l.c) return failure(l.why);
        std::string k = "backstop:" + key;
        // One round trip, atomic on the server. Each event needs a unique member of
        // the sorted set; a server-side counter gives one that no two MX hosts (nor
        // two identical containers with the same pid) can both pick.
        static const char* kScript =
            "local n = redis.call('INCR', KEYS[2]) "
            "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1] .. ':' .. n) "
            "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2]) "
            "redis.call('EXPIRE', KEYS[1], ARGV[2]) "
            "return redis.call('ZCARD', KEYS[1])";
        Reply r(redisCommand(l.c, "EVAL %s 2 %s backstop:seq %lld %lld", kScript, k.c_str(),
                             (long long)now, (long long)window));
        if (!r.r) return l.broken();
        if (!r.ok()) return failure(r.r->str ? r.r->str : "EVAL failed");
        if (r.r->type != REDIS_REPLY_INTEGER) return failure("unexpected EVAL reply");
        return std::uint64_t(r.r->integer);
    }

    Result<bool, Failure> record_bounce(const std::string& address, const std::string& status,
                                        const std::string& reason, UnixTime now) override {
        Lease l(*this);
        if (!l.c) return failure(l.why);
        std::string a = ascii_lower(address);
        std::string k = "backstop:bounce:" + a;
        redisAppendCommand(l.c, "MULTI");
        redisAppendCommand(l.c, "HSETNX %s first_seen %lld", k.c_str(), (long long)now);
        redisAppendCommand(l.c, "HSET %s status %s reason %s last_seen %lld", k.c_str(),
                           status.c_str(), reason.c_str(), (long long)now);
        redisAppendCommand(l.c, "HINCRBY %s count 1", k.c_str());
        redisAppendCommand(l.c, "SADD backstop:bounces %s", a.c_str());
        // A record that sees no new bounce for the ttl expires on its own.
        if (ttl_ > 0) redisAppendCommand(l.c, "EXPIRE %s %lld", k.c_str(), (long long)ttl_);
        redisAppendCommand(l.c, "EXEC");
        const int replies = ttl_ > 0 ? 7 : 6;
        for (int i = 0; i < replies; ++i) {
            void* raw = nullptr;
            if (redisGetReply(l.c, &raw) != REDIS_OK) return l.broken();
            Reply r(raw);
            if (!r.ok()) return failure(r.r ? r.r->str : "no reply");
        }
        return true;
    }

    Result<std::optional<BounceRecord>, Failure> bounce(const std::string& address,
                                                        UnixTime) override {
        Lease l(*this);
        if (!l.c) return failure(l.why);
        return fetch(l, ascii_lower(address));
    }

    Result<std::vector<BounceRecord>, Failure> bounces(UnixTime) override {
        Lease l(*this);
        if (!l.c) return failure(l.why);
        Reply members(redisCommand(l.c, "SMEMBERS backstop:bounces"));
        if (!members.r) return l.broken();
        if (!members.ok() || members.r->type != REDIS_REPLY_ARRAY)
            return failure("SMEMBERS failed");
        std::vector<BounceRecord> out;
        for (std::size_t i = 0; i < members.r->elements; ++i) {
            auto one = fetch(l, members.r->element[i]->str);
            if (!one) return one.error();
            if (*one) {
                out.push_back(**one);
            } else {
                // Its hash expired: drop the index entry too.
                Reply srem(
                    redisCommand(l.c, "SREM backstop:bounces %s", members.r->element[i]->str));
                if (!srem.r) return l.broken();
            }
        }
        std::sort(out.begin(), out.end(),
                  [](const auto& x, const auto& y) { return x.address < y.address; });
        return out;
    }

    Result<bool, Failure> forget(const std::string& address) override {
        Lease l(*this);
        if (!l.c) return failure(l.why);
        std::string a = ascii_lower(address);
        Reply del(redisCommand(l.c, "DEL backstop:bounce:%s", a.c_str()));
        if (!del.r) return l.broken();
        Reply srem(redisCommand(l.c, "SREM backstop:bounces %s", a.c_str()));
        if (!srem.r) return l.broken();
        return del.ok() && del.r->integer > 0;
    }

    // postsrsd 2's keys: PostSRSd/ALIAS@1, written with SETEX so Redis expires them.
    Result<bool, Failure> put_alias(const std::string& alias, const std::string& sender, UnixTime,
                                    UnixTime ttl) override {
        Lease l(*this);
        if (!l.c) return failure(l.why);
        const std::string k = "PostSRSd/" + alias;
        Reply r(redisCommand(l.c, "SETEX %s %lld %s", k.c_str(), (long long)ttl, sender.c_str()));
        if (!r.r) return l.broken();
        if (!r.ok()) return failure(r.r->str ? r.r->str : "SETEX failed");
        return true;
    }

    Result<std::optional<std::string>, Failure> alias(const std::string& alias, UnixTime) override {
        Lease l(*this);
        if (!l.c) return failure(l.why);
        const std::string k = "PostSRSd/" + alias;
        Reply r(redisCommand(l.c, "GET %s", k.c_str()));
        if (!r.r) return l.broken();
        if (!r.ok()) return failure(r.r->str ? r.r->str : "GET failed");
        if (r.r->type != REDIS_REPLY_STRING || r.r->len == 0) return std::optional<std::string>{};
        return std::optional<std::string>{std::string(r.r->str, r.r->len)};
    }

    std::string name() const {
        return "redis://" + host_ + ":" + std::to_string(port_) + "/" + std::to_string(db_);
    }

  private:
    // A connection borrowed from the pool for one call; a broken one is dropped.
    struct Lease {
        explicit Lease(RedisStore& s) : store(s) { c = s.acquire(why); }
        ~Lease() {
            if (c) store.release(c, healthy);
        }
        Failure broken() {
            healthy = false;
            return Failure{"state " + store.name() + ": " +
                           (c->errstr[0] ? c->errstr : "connection lost")};
        }
        RedisStore& store;
        redisContext* c = nullptr;
        bool healthy = true;
        std::string why;
    };

    Failure failure(const std::string& why) const {
        return Failure{"state " + name() + ": " + why};
    }

    Result<std::optional<BounceRecord>, Failure> fetch(Lease& l, const std::string& a) {
        Reply r(redisCommand(
            l.c, "HMGET backstop:bounce:%s status reason first_seen last_seen count", a.c_str()));
        if (!r.r) return l.broken();
        if (!r.ok() || r.r->type != REDIS_REPLY_ARRAY || r.r->elements != 5)
            return failure("HMGET failed");
        if (r.r->element[4]->type == REDIS_REPLY_NIL) return std::optional<BounceRecord>{};
        auto str = [&](std::size_t i) {
            return r.r->element[i]->type == REDIS_REPLY_STRING ? std::string(r.r->element[i]->str)
                                                               : std::string();
        };
        BounceRecord b;
        b.address = a;
        b.status = str(0);
        b.reason = str(1);
        b.first_seen = std::atoll(str(2).c_str());
        b.last_seen = std::atoll(str(3).c_str());
        b.count = std::strtoull(str(4).c_str(), nullptr, 10);
        return std::optional<BounceRecord>{b};
    }

    redisContext* acquire(std::string& why) {
        std::unique_lock<std::mutex> lock(mutex_);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
        while (idle_.empty() && open_ >= max_) {
            if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
                why = "no free connection within " + std::to_string(timeout_ms_) + " ms";
                return nullptr;
            }
        }
        if (!idle_.empty()) {
            redisContext* c = idle_.back();
            idle_.pop_back();
            return c;
        }
        ++open_;
        lock.unlock();
        timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
        redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, tv);
        if (c && !c->err) {
            redisSetTimeout(c, tv);
            if (db_ != 0) {
                Reply sel(redisCommand(c, "SELECT %d", db_));
                if (!sel.ok()) {
                    redisFree(c);
                    c = nullptr;
                    why = "SELECT " + std::to_string(db_) + " failed";
                }
            }
            if (c) return c;
        } else {
            why = c ? c->errstr : "cannot allocate a connection";
            if (c) redisFree(c);
        }
        lock.lock();
        --open_;
        cv_.notify_one();
        return nullptr;
    }

    void release(redisContext* c, bool healthy) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (healthy && !c->err) {
            idle_.push_back(c);
        } else {
            redisFree(c);
            --open_;
        }
        cv_.notify_one();
    }

    std::string host_;
    int port_;
    int db_;
    int timeout_ms_;
    UnixTime ttl_;
    std::size_t max_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<redisContext*> idle_;
    std::size_t open_ = 0;
};

}  // namespace

Result<std::shared_ptr<StateStore>, Failure> open_redis_store(const std::string& spec,
                                                              const StateOptions& options) {
    // redis://host[:port][/db]
    std::string rest = spec.substr(8);
    std::string hostport = rest.substr(0, rest.find('/'));
    int db = 0;
    if (auto slash = rest.find('/'); slash != std::string::npos && slash + 1 < rest.size()) {
        std::string d = rest.substr(slash + 1);
        if (d.find_first_not_of("0123456789") != std::string::npos || d.size() > 3) {
            return Failure{"state '" + spec + "': bad database number"};
        }
        db = std::stoi(d);
    }
    std::string host = hostport;
    int port = 6379;
    if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
        std::string p = hostport.substr(colon + 1);
        if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
            return Failure{"state '" + spec + "': bad port"};
        }
        port = std::stoi(p);
        if (port < 1 || port > 65535) return Failure{"state '" + spec + "': bad port"};
        host = hostport.substr(0, colon);
    }
    if (host.empty()) return Failure{"state '" + spec + "': no host"};
    return std::shared_ptr<StateStore>(std::make_shared<RedisStore>(host, port, db, options, 16));
}

}  // namespace backstop
