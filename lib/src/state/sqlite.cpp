// The SQLite store: embedded and persistent (WAL mode), for one MX that must keep
// its counters and bounce records across restarts.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>

#include "backstop/base/ascii.hpp"
#include "stores.hpp"

namespace backstop {

namespace {

class SqliteStore final : public StateStore {
  public:
    SqliteStore(sqlite3* db, UnixTime ttl) : db_(db), ttl_(ttl) {}
    ~SqliteStore() override { sqlite3_close(db_); }

    Result<std::uint64_t, Failure> hit(const std::string& key, UnixTime now,
                                       UnixTime window) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!exec("BEGIN IMMEDIATE")) return error("begin");
        bool ok = run("INSERT INTO events(key, t) VALUES(?1, ?2)", key, now) &&
                  run("DELETE FROM events WHERE key = ?1 AND t <= ?2", key, now - window);
        std::uint64_t n = 0;
        if (ok) {
            sqlite3_stmt* st = prepare("SELECT COUNT(*) FROM events WHERE key = ?1");
            ok = st && sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW;
            if (ok) n = std::uint64_t(sqlite3_column_int64(st, 0));
            sqlite3_finalize(st);
        }
        if (!ok) {
            Failure f = error("count");  // before ROLLBACK replaces the error text
            exec("ROLLBACK");
            return f;
        }
        if (!exec("COMMIT")) return error("commit");
        return n;
    }

    Result<bool, Failure> record_bounce(const std::string& address, const std::string& status,
                                        const std::string& reason, UnixTime now) override {
        std::lock_guard<std::mutex> lock(mutex_);
        const std::string a = ascii_lower(address);
        if (ttl_ > 0) {
            // An expired record starts over; now and then all expired ones go.
            const char* sql = ++records_ % 1024 == 0
                                  ? "DELETE FROM bounces WHERE ?1 <> '' AND last_seen <= ?2"
                                  : "DELETE FROM bounces WHERE address = ?1 AND last_seen <= ?2";
            if (!run(sql, a, now - ttl_)) return error("expire");
        }
        sqlite3_stmt* st = prepare(
            "INSERT INTO bounces(address, status, reason, first_seen, last_seen, count) VALUES(?1, "
            "?2, ?3, ?4, ?4, 1) "
            "ON CONFLICT(address) DO UPDATE SET status = ?2, reason = ?3, last_seen = ?4, count = "
            "count + 1");
        bool ok = st && sqlite3_bind_text(st, 1, a.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
                  sqlite3_bind_text(st, 2, status.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
                  sqlite3_bind_text(st, 3, reason.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
                  sqlite3_bind_int64(st, 4, now) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
        if (!ok) return error("record bounce");
        return true;
    }

    Result<std::optional<BounceRecord>, Failure> bounce(const std::string& address,
                                                        UnixTime now) override {
        std::lock_guard<std::mutex> lock(mutex_);
        auto rows = select("WHERE address = ?1 AND last_seen > ?2", ascii_lower(address), now);
        if (!rows) return rows.error();
        if (rows->empty()) return std::optional<BounceRecord>{};
        return std::optional<BounceRecord>{rows->front()};
    }

    Result<std::vector<BounceRecord>, Failure> bounces(UnixTime now) override {
        std::lock_guard<std::mutex> lock(mutex_);
        return select("WHERE ?1 = '' AND last_seen > ?2 ORDER BY address", "", now);
    }

    Result<bool, Failure> forget(const std::string& address) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!run("DELETE FROM bounces WHERE address = ?1", ascii_lower(address), 0))
            return error("forget");
        return sqlite3_changes(db_) > 0;
    }

    // postsrsd 2's kv table: lt is the expiry in Unix time.
    Result<bool, Failure> put_alias(const std::string& alias, const std::string& sender,
                                    UnixTime now, UnixTime ttl) override {
        std::lock_guard<std::mutex> lock(mutex_);
        // Now and then the expired ones go, as postsrsd 2 expires them.
        if (++alias_writes_ % 1024 == 0 &&
            !run("DELETE FROM kv WHERE ?1 = '' AND lt <= ?2", "", now))
            return error("expire aliases");
        sqlite3_stmt* st = prepare("INSERT INTO kv (k, v, lt) VALUES (?1, ?2, ?3)");
        bool ok =
            st && sqlite3_bind_text(st, 1, alias.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
            sqlite3_bind_text(st, 2, sender.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
            sqlite3_bind_int64(st, 3, now + ttl) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
        if (!ok) return error("write alias");
        return true;
    }

    Result<std::optional<std::string>, Failure> alias(const std::string& alias,
                                                      UnixTime now) override {
        std::lock_guard<std::mutex> lock(mutex_);
        sqlite3_stmt* st = prepare("SELECT v, lt FROM kv WHERE k = ?1");
        if (!st) return error("read alias");
        sqlite3_bind_text(st, 1, alias.c_str(), -1, SQLITE_TRANSIENT);
        std::optional<std::string> sender;
        bool expired = false;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char* v = sqlite3_column_text(st, 0);
            if (sqlite3_column_int64(st, 1) <= now) {
                expired = true;
            } else if (v && *v) {
                sender = std::string(reinterpret_cast<const char*>(v));
            }
            rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return error("read alias");
        if (expired && !run("DELETE FROM kv WHERE k = ?1 AND lt <= ?2", alias, now))
            return error("expire alias");
        return sender;
    }

    Failure error(const std::string& what) const {
        return Failure{"state sqlite: " + what + ": " + sqlite3_errmsg(db_)};
    }

    bool exec(const char* sql) {
        return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
    }

  private:
    sqlite3_stmt* prepare(const char* sql) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) return nullptr;
        return st;
    }

    bool run(const char* sql, const std::string& text, std::int64_t number) {
        sqlite3_stmt* st = prepare(sql);
        bool ok = st && sqlite3_bind_text(st, 1, text.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK;
        if (ok && sqlite3_bind_parameter_count(st) >= 2)
            ok = sqlite3_bind_int64(st, 2, number) == SQLITE_OK;
        ok = ok && sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
        return ok;
    }

    // ?1 is arg, ?2 the oldest last_seen excluded (records that expired by now).
    Result<std::vector<BounceRecord>, Failure> select(const std::string& where,
                                                      const std::string& arg, UnixTime now) {
        std::string sql =
            "SELECT address, status, reason, first_seen, last_seen, count FROM bounces " + where;
        sqlite3_stmt* st = prepare(sql.c_str());
        if (!st) return error("select");
        const std::int64_t cutoff = ttl_ > 0 ? now - ttl_ : INT64_MIN;
        sqlite3_bind_text(st, 1, arg.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, cutoff);
        std::vector<BounceRecord> out;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            BounceRecord r;
            auto text = [&](int i) {
                const unsigned char* t = sqlite3_column_text(st, i);
                return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
            };
            r.address = text(0);
            r.status = text(1);
            r.reason = text(2);
            r.first_seen = sqlite3_column_int64(st, 3);
            r.last_seen = sqlite3_column_int64(st, 4);
            r.count = std::uint64_t(sqlite3_column_int64(st, 5));
            out.push_back(std::move(r));
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return error("select");
        return out;
    }

    std::mutex mutex_;
    sqlite3* db_;
    const UnixTime ttl_;
    std::uint64_t records_ = 0;
    std::uint64_t alias_writes_ = 0;
};

}  // namespace

Result<std::shared_ptr<StateStore>, Failure> open_sqlite_store(const std::string& path,
                                                               const StateOptions& options) {
    sqlite3* db = nullptr;
    const int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (options.create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
        std::string why = db ? sqlite3_errmsg(db) : "out of memory";
        if (!options.create && ::access(path.c_str(), F_OK) != 0) why = "no such database";
        sqlite3_close(db);
        return Failure{"state sqlite:" + path + ": " + why};
    }
    auto store = std::make_shared<SqliteStore>(db, options.bounce_ttl);
    // WAL: readers (the admin CLI) never block the milter's writes.
    sqlite3_busy_timeout(db, 2000);
    if (!store->exec("PRAGMA journal_mode=WAL") || !store->exec("PRAGMA synchronous=NORMAL") ||
        !store->exec("CREATE TABLE IF NOT EXISTS events(key TEXT NOT NULL, t INTEGER NOT NULL)") ||
        !store->exec("CREATE INDEX IF NOT EXISTS events_key_t ON events(key, t)") ||
        !store->exec("CREATE TABLE IF NOT EXISTS bounces(address TEXT PRIMARY KEY, status TEXT, "
                     "reason TEXT, "
                     "first_seen INTEGER, last_seen INTEGER, count INTEGER)") ||
        !store->exec("CREATE INDEX IF NOT EXISTS bounces_last_seen ON bounces(last_seen)") ||
        // postsrsd 2's schema and index name, so either program can open the other's file.
        !store->exec("CREATE TABLE IF NOT EXISTS kv (k TEXT NOT NULL UNIQUE ON CONFLICT REPLACE, "
                     "v TEXT NOT NULL, lt INTEGER NOT NULL)") ||
        !store->exec("CREATE INDEX IF NOT EXISTS ltidx ON kv (lt)")) {
        return Failure{"state sqlite:" + path + ": " + store->error("schema").message};
    }
    return std::shared_ptr<StateStore>(std::move(store));
}

}  // namespace backstop
