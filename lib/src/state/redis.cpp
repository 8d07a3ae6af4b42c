// The Redis store: every MX of a site shares counters and bounce records. Atomic
// updates (Lua scripts run whole on the server), keys expire on their own, a small
// connection pool, and a deadline on every call so a slow Redis never stalls a
// milter thread. Connections (TCP or TLS, AUTH, SELECT) are redis_connection.cpp's;
// with Sentinel the master is found, and found again after a failover, by
// redis_sentinel.cpp's.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <vector>

#include "backstop/base/ascii.hpp"
#include "redis_connection.hpp"
#include "redis_sentinel.hpp"
#include "stores.hpp"

namespace backstop {

namespace {

// A reply, or nothing when the call failed (the Failure says why).
struct Reply {
    RedisReplyPtr p;
    redisReply* r = nullptr;
    explicit Reply(RedisReplyPtr reply) : p(std::move(reply)), r(p.get()) {}
    bool ok() const { return r && r->type != REDIS_REPLY_ERROR; }
};

// Where the data lives: one server, or the master that Sentinels name.
struct RedisTarget {
    RedisAddress server;
    std::vector<RedisAddress> sentinels;  // non-empty: ask them for master_name
    std::string master_name;
    int db = 0;
};

class RedisStore final : public StateStore {
  public:
    RedisStore(std::string spec, RedisTarget target, RedisLogin login, const StateOptions& options,
               std::size_t pool)
        : spec_(std::move(spec)),
          target_(std::move(target)),
          login_(std::move(login)),
          timeout_ms_(options.timeout_ms),
          ttl_(options.bounce_ttl),
          max_(pool) {}

    Result<std::uint64_t, Failure> hit(const std::string& key, UnixTime now,
                                       UnixTime window) override {
        // One round trip, atomic on the server. Each event needs a unique member of
        // the sorted set; a server-side counter gives one that no two MX hosts (nor
        // two identical containers with the same pid) can both pick.
        static const char* kScript =
            "local n = redis.call('INCR', KEYS[2]) "
            "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1] .. ':' .. n) "
            "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2]) "
            "redis.call('EXPIRE', KEYS[1], ARGV[2]) "
            "return redis.call('ZCARD', KEYS[1])";
        auto r = command({"EVAL", kScript, "2", "backstop:" + key, "backstop:seq",
                          std::to_string(now), std::to_string(window)});
        if (!r) return r.error();
        if (!r->ok()) return failure(redis_error_text(r->r));
        if (r->r->type != REDIS_REPLY_INTEGER) return failure("unexpected EVAL reply");
        return std::uint64_t(r->r->integer);
    }

    Result<bool, Failure> record_bounce(const std::string& address, const std::string& status,
                                        const std::string& reason, UnixTime now) override {
        std::string a = ascii_lower(address);
        // One script, atomic: a record that expired by now (our clock, as SQLite's)
        // starts over; one that sees no new bounce for the ttl also expires on its own.
        static const char* kScript =
            "local ttl = tonumber(ARGV[5]) "
            "if ttl > 0 then "
            "  local last = redis.call('HGET', KEYS[1], 'last_seen') "
            "  if last and tonumber(last) <= tonumber(ARGV[4]) - ttl then "
            "    redis.call('DEL', KEYS[1]) end end "
            "redis.call('HSETNX', KEYS[1], 'first_seen', ARGV[4]) "
            "redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2], 'last_seen', "
            "ARGV[4]) "
            "redis.call('HINCRBY', KEYS[1], 'count', 1) "
            "redis.call('SADD', KEYS[2], ARGV[3]) "
            "if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end "
            "return 1";
        auto r = command({"EVAL", kScript, "2", "backstop:bounce:" + a, "backstop:bounces", status,
                          reason, a, std::to_string(now), std::to_string(ttl_)});
        if (!r) return r.error();
        if (!r->ok()) return failure(redis_error_text(r->r));
        return true;
    }

    Result<std::optional<BounceRecord>, Failure> bounce(const std::string& address,
                                                        UnixTime now) override {
        Lease l(*this);
        if (!l.c) return l.failed();
        return fetch(l, ascii_lower(address), now);
    }

    Result<std::vector<BounceRecord>, Failure> bounces(UnixTime now) override {
        Lease l(*this);
        if (!l.c) return l.failed();
        auto members = l.run({"SMEMBERS", "backstop:bounces"});
        if (!members) return members.error();
        if (!members->ok() || members->r->type != REDIS_REPLY_ARRAY)
            return failure("SMEMBERS: " + redis_error_text(members->r));
        std::vector<BounceRecord> out;
        for (std::size_t i = 0; i < members->r->elements; ++i) {
            const redisReply* m = members->r->element[i];
            std::string a(m->str ? m->str : "", m->str ? m->len : 0);
            auto one = fetch(l, a, now);
            if (!one) return one.error();
            if (*one) {
                out.push_back(**one);
            } else if (auto gone = l.run({"EXISTS", "backstop:bounce:" + a}); !gone) {
                return gone.error();
            } else if (gone->r->type == REDIS_REPLY_INTEGER && gone->r->integer == 0) {
                // Its hash expired: drop the index entry too.
                auto srem = l.run({"SREM", "backstop:bounces", a});
                if (!srem) return srem.error();
            }
        }
        std::sort(out.begin(), out.end(),
                  [](const auto& x, const auto& y) { return x.address < y.address; });
        return out;
    }

    Result<bool, Failure> forget(const std::string& address) override {
        Lease l(*this);
        if (!l.c) return l.failed();
        std::string a = ascii_lower(address);
        auto del = l.run({"DEL", "backstop:bounce:" + a});
        if (!del) return del.error();
        auto srem = l.run({"SREM", "backstop:bounces", a});
        if (!srem) return srem.error();
        return del->ok() && del->r->integer > 0;
    }

    // postsrsd 2's keys: PostSRSd/ALIAS@1, written with SETEX so Redis expires them.
    Result<bool, Failure> put_alias(const std::string& alias, const std::string& sender, UnixTime,
                                    UnixTime ttl) override {
        auto r = command({"SETEX", "PostSRSd/" + alias, std::to_string(ttl), sender});
        if (!r) return r.error();
        if (!r->ok()) return failure("SETEX: " + redis_error_text(r->r));
        return true;
    }

    Result<std::optional<std::string>, Failure> alias(const std::string& alias, UnixTime) override {
        auto r = command({"GET", "PostSRSd/" + alias});
        if (!r) return r.error();
        if (!r->ok()) return failure("GET: " + redis_error_text(r->r));
        if (r->r->type != REDIS_REPLY_STRING || r->r->len == 0) return std::optional<std::string>{};
        return std::optional<std::string>{std::string(r->r->str, r->r->len)};
    }

    Result<bool, Failure> check() override {
        auto r = command({"PING"});
        if (!r) return r.error();
        if (!r->ok()) return failure(redis_error_text(r->r));
        return true;
    }

    // Runs one command (argv, binary-safe) on a pooled connection. A Failure is a
    // connection that broke or a master that is no longer one (READONLY); an error
    // reply is a Reply whose ok() is false.
    Result<Reply, Failure> command(const std::vector<std::string>& argv) {
        Lease l(*this);
        if (!l.c) return l.failed();
        return l.run(argv);
    }

  private:
    // A connection borrowed from the pool for one call; a broken one is dropped.
    struct Lease {
        explicit Lease(RedisStore& s) : store(s) { c = s.acquire(why, generation); }
        ~Lease() {
            if (c) store.release(std::move(c), healthy, generation);
        }
        Failure failed() const { return store.failure(why); }
        Result<Reply, Failure> run(const std::vector<std::string>& argv) {
            auto r = c->command(argv);
            if (!r) {
                healthy = false;
                store.lost_master(generation);
                return store.failure(r.error().message);
            }
            Reply reply(std::move(r.value()));
            if (reply.r->type == REDIS_REPLY_ERROR &&
                std::string(reply.r->str, reply.r->len).rfind("READONLY", 0) == 0) {
                // A failover demoted the server we talk to: find the new master.
                healthy = false;
                store.lost_master(generation);
                return store.failure(redis_error_text(reply.r) + " (a replica now; failover?)");
            }
            return reply;
        }
        RedisStore& store;
        std::unique_ptr<RedisConnection> c;
        bool healthy = true;
        std::uint64_t generation = 0;
        std::string why;
    };

    Failure failure(const std::string& why) const { return Failure{"state " + spec_ + ": " + why}; }

    Result<std::optional<BounceRecord>, Failure> fetch(Lease& l, const std::string& a,
                                                       UnixTime now) {
        auto r = l.run({"HMGET", "backstop:bounce:" + a, "status", "reason", "first_seen",
                        "last_seen", "count"});
        if (!r) return r.error();
        if (!r->ok() || r->r->type != REDIS_REPLY_ARRAY || r->r->elements != 5)
            return failure("HMGET: " + redis_error_text(r->r));
        if (r->r->element[4]->type == REDIS_REPLY_NIL) return std::optional<BounceRecord>{};
        auto str = [&](std::size_t i) {
            const redisReply* e = r->r->element[i];
            return e->type == REDIS_REPLY_STRING ? std::string(e->str, e->len) : std::string();
        };
        BounceRecord b;
        b.address = a;
        b.status = str(0);
        b.reason = str(1);
        b.first_seen = std::atoll(str(2).c_str());
        b.last_seen = std::atoll(str(3).c_str());
        b.count = std::strtoull(str(4).c_str(), nullptr, 10);
        // Expired by our clock, like SQLite's, whatever Redis's own EXPIRE has done yet.
        if (bounce_expired(b.last_seen, now, ttl_)) return std::optional<BounceRecord>{};
        return std::optional<BounceRecord>{b};
    }

    // The server to connect to: the fixed one, or the master the Sentinels name.
    Result<RedisAddress, Failure> where() {
        if (target_.sentinels.empty()) return target_.server;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (master_) return *master_;
        }
        auto found = ask_sentinels(target_.sentinels, target_.master_name, login_);
        if (!found) return found.error();
        std::lock_guard<std::mutex> lock(mutex_);
        master_ = *found;
        return *found;
    }

    // After a broken connection or READONLY under Sentinel: ask again, and close the
    // idle connections to the old master.
    void lost_master(std::uint64_t generation) {
        if (target_.sentinels.empty()) return;
        std::lock_guard<std::mutex> lock(mutex_);
        if (generation != generation_) return;  // already done
        ++generation_;
        master_.reset();
        open_ -= idle_.size();
        idle_.clear();
        cv_.notify_all();
    }

    std::unique_ptr<RedisConnection> acquire(std::string& why, std::uint64_t& generation) {
        std::unique_lock<std::mutex> lock(mutex_);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
        while (idle_.empty() && open_ >= max_) {
            if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
                why = "no free connection within " + std::to_string(timeout_ms_) + " ms";
                return nullptr;
            }
        }
        generation = generation_;
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return c;
        }
        ++open_;
        lock.unlock();
        std::unique_ptr<RedisConnection> c;
        auto at = where();
        if (!at) {
            why = at.error().message;
        } else if (auto opened = RedisConnection::open(*at, login_, target_.db); !opened) {
            why = opened.error().message;
            lost_master(generation);
        } else if (std::string role = target_.sentinels.empty() ? "" : check_master_role(**opened);
                   !role.empty()) {
            why = at->text() + ": " + role;
            lost_master(generation);
        } else {
            return std::move(opened.value());
        }
        lock.lock();
        --open_;
        cv_.notify_one();
        return nullptr;
    }

    void release(std::unique_ptr<RedisConnection> c, bool healthy, std::uint64_t generation) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (healthy && !c->broken() && generation == generation_) {
            idle_.push_back(std::move(c));
        } else {
            --open_;
        }
        cv_.notify_one();
    }

    const std::string spec_;
    const RedisTarget target_;
    const RedisLogin login_;
    int timeout_ms_;
    UnixTime ttl_;
    std::size_t max_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::unique_ptr<RedisConnection>> idle_;
    std::size_t open_ = 0;
    std::uint64_t generation_ = 0;        // bumped when the master is lost
    std::optional<RedisAddress> master_;  // Sentinel's answer, until it fails us
};

// host[:port], host may be [v6]; port defaults to default_port.
std::string parse_address(const std::string& text, int default_port, RedisAddress& out) {
    std::string host = text, port;
    if (!text.empty() && text.front() == '[') {
        std::size_t close = text.find(']');
        if (close == std::string::npos) return "'" + text + "': no ']' after the IPv6 address";
        host = text.substr(1, close - 1);
        std::string rest = text.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return "'" + text + "': bad port";
        if (!rest.empty()) port = rest.substr(1);
        if (rest == ":") return "'" + text + "': bad port";
    } else if (auto colon = text.find(':'); colon != std::string::npos) {
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (port.empty()) return "'" + text + "': bad port";
    }
    if (host.empty()) return "no host";
    out.host = host;
    out.port = default_port;
    if (!port.empty()) {
        if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
            return "'" + port + "' is not a port";
        out.port = std::stoi(port);
        if (out.port < 1 || out.port > 65535)
            return "port " + port + " is out of range (1 to 65535)";
    }
    return {};
}

// The URL's parts; a Failure names the spec and what is wrong with it.
struct RedisUrl {
    RedisTarget target;
    std::string user;
    bool tls = false;
};

Result<RedisUrl, Failure> parse_redis_url(const std::string& spec) {
    // redis[s]://[user@]host[:port][/db]  redis[s]-sentinel://[user@]h:p,h:p/MASTER[/db]
    auto bad = [&](const std::string& why) { return Failure{"state '" + spec + "': " + why}; };
    const std::size_t scheme_end = spec.find("://");
    if (scheme_end == std::string::npos) return bad("not a redis URL");
    const std::string scheme = spec.substr(0, scheme_end);
    if (scheme != "redis" && scheme != "rediss" && scheme != "redis-sentinel" &&
        scheme != "rediss-sentinel")
        return bad("scheme is not redis, rediss, redis-sentinel or rediss-sentinel");
    RedisUrl url;
    url.tls = scheme == "rediss" || scheme == "rediss-sentinel";
    const bool sentinel = scheme.find("sentinel") != std::string::npos;
    std::string rest = spec.substr(scheme_end + 3);
    if (auto at = rest.find('@'); at != std::string::npos) {
        url.user = rest.substr(0, at);
        rest = rest.substr(at + 1);
        if (url.user.find(':') != std::string::npos)
            return bad("a password never goes in the URL: put it in redis-password-file");
        if (url.user.empty() || url.user.find_first_of("/ ,") != std::string::npos)
            return bad("bad user name");
    }
    RedisTarget& target = url.target;
    std::string hosts = rest.substr(0, rest.find('/'));
    std::string path = rest.find('/') == std::string::npos ? "" : rest.substr(rest.find('/') + 1);
    if (sentinel) {
        std::size_t slash = path.find('/');
        target.master_name = path.substr(0, slash);
        path = slash == std::string::npos ? "" : path.substr(slash + 1);
        if (target.master_name.empty())
            return bad("no master name (redis-sentinel://host:26379,host:26379/MASTER)");
        std::size_t from = 0;
        for (;;) {
            std::size_t comma = hosts.find(',', from);
            RedisAddress a;
            if (auto why = parse_address(hosts.substr(from, comma - from), 26379, a); !why.empty())
                return bad(why);
            target.sentinels.push_back(a);
            if (comma == std::string::npos) break;
            from = comma + 1;
        }
    } else if (auto why = parse_address(hosts, 6379, target.server); !why.empty()) {
        return bad(why);
    }
    if (!path.empty()) {
        if (path.find_first_not_of("0123456789") != std::string::npos || path.size() > 3)
            return bad("bad database number '" + path + "'");
        target.db = std::stoi(path);
    }
    return url;
}

}  // namespace

Result<StateSpecNeeds, Failure> check_redis_url(const std::string& spec) {
    auto url = parse_redis_url(spec);
    if (!url) return url.error();
    StateSpecNeeds needs;
    needs.tls = url->tls;
    needs.password = !url->user.empty();
    needs.remote = true;
    return needs;
}

Result<std::shared_ptr<StateStore>, Failure> open_redis_store(const std::string& spec,
                                                              const StateOptions& options) {
    auto url = parse_redis_url(spec);
    if (!url) return url.error();
    auto bad = [&](const std::string& why) { return Failure{"state '" + spec + "': " + why}; };
    RedisLogin login;
    login.timeout_ms = options.timeout_ms;
    login.user = url->user;
    login.password = options.redis_password;
    if (!login.user.empty() && login.password.empty())
        return bad("user " + login.user + " needs a password: set redis-password-file");
    if (url->tls) {
        auto ctx = make_redis_tls(options.redis_ca_file, options.redis_cert_file,
                                  options.redis_key_pem, options.redis_key_file);
        if (!ctx) return bad(ctx.error().message);
        login.tls = *ctx;
    } else if (!options.redis_cert_file.empty()) {
        return bad("redis-cert-file needs TLS: use rediss://");
    }
    return std::shared_ptr<StateStore>(
        std::make_shared<RedisStore>(spec, std::move(url->target), std::move(login), options, 16));
}

}  // namespace backstop
