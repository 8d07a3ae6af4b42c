// Redis as a fleet deploys it: a password, an ACL user allowed only backstop's
// commands, TLS with a CA made here by openssl. Real redis-server processes.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "backstop/policy/config.hpp"
#include "backstop/policy/state_options.hpp"
#include "backstop/state/store.hpp"
#include "redis_server.hpp"
#include "temp_dir.hpp"

using namespace backstop;
using backstop::test::RedisSentinel;
using backstop::test::RedisServer;
using backstop::test::replicas_caught_up;
using backstop::testing::TempDir;

namespace {

constexpr const char* kPassword = "s3cret-Pw-9f2c";

void require_redis() {
    // No skip: scripts/test installs redis-server; a missing one is a failed setup.
    ASSERT_EQ(std::system("command -v redis-server >/dev/null"), 0) << "redis-server not installed";
}

// Every operation backstop does, through one store; a failure names the operation.
std::string all_operations(StateStore& s) {
    auto hit = s.hit("storm:a@ours.example", 1000, 600);
    if (!hit) return "hit: " + hit.error().message;
    if (*hit != 1) return "hit counted " + std::to_string(*hit);
    auto rec = s.record_bounce("gone@remote.example", "5.1.1", "userunknown", 1000);
    if (!rec) return "record_bounce: " + rec.error().message;
    auto one = s.bounce("gone@remote.example", 1000);
    if (!one || !*one) return "bounce: " + (one ? std::string("no record") : one.error().message);
    // An expired record is left out and its index entry dropped (EXISTS, SREM).
    auto old = s.record_bounce("old@remote.example", "5.1.1", "userunknown", 10);
    if (!old) return "record_bounce: " + old.error().message;
    auto all = s.bounces(1000);
    if (!all) return "bounces: " + all.error().message;
    auto forgot = s.forget("gone@remote.example");
    if (!forgot || !*forgot) return "forget: " + (forgot ? "nothing" : forgot.error().message);
    auto ping = s.check();
    if (!ping) return "check: " + ping.error().message;
    return {};
}

StateOptions with_password(const std::string& password) {
    StateOptions o;
    o.redis_password = password;
    o.bounce_ttl = 100;
    o.timeout_ms = 3000;  // a TLS handshake on a loaded test machine; no timing is tested
    return o;
}

// "answered" when a store opened on spec reaches its server, else why not.
std::string failing(const std::string& spec, const StateOptions& opts) {
    auto s = open_state(spec, opts);
    if (!s) return s.error().message;
    auto r = (*s)->check();
    return r ? std::string("answered") : r.error().message;
}

}  // namespace

TEST(StateRedisAuth, PasswordRequiredWrongAndRight) {
    require_redis();
    RedisServer server({"--requirepass", kPassword});
    ASSERT_TRUE(server.running());

    auto none = open_state(server.spec(2));
    ASSERT_TRUE(none.ok());
    auto e = (*none)->check();
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("requires a password (NOAUTH"), std::string::npos)
        << e.error().message;
    EXPECT_NE(e.error().message.find("redis-password-file"), std::string::npos);

    auto wrong = open_state(server.spec(2), with_password("not-the-password"));
    ASSERT_TRUE(wrong.ok());
    auto h = (*wrong)->hit("k", 1, 60);
    ASSERT_FALSE(h.ok());
    EXPECT_NE(h.error().message.find("refused the password of the default user (WRONGPASS"),
              std::string::npos)
        << h.error().message;
    EXPECT_EQ(h.error().message.find("not-the-password"), std::string::npos);

    auto right = open_state(server.spec(2), with_password(kPassword));
    ASSERT_TRUE(right.ok());
    EXPECT_EQ(all_operations(**right), "");
}

// The ACL user of the docs (README, backstop.conf(5)): only the commands backstop
// sends (Lua's redis.call()s included), only its keys; the default user is off.
TEST(StateRedisAuth, AclUserWithOnlyBackstopsCommands) {
    require_redis();
    TempDir dir("backstop-redis-acl");
    const std::string acl = std::string("user backstop on >") + kPassword +
                            " ~backstop:* ~PostSRSd/* resetchannels -@all +ping +select +eval "
                            "+incr +zadd +zremrangebyscore +expire +zcard +hget +hset +hsetnx "
                            "+hincrby +hmget +sadd +smembers +srem +exists +del +setex +get\n";
    RedisServer server({"--aclfile", dir.write("users.acl", "user default off\n" + acl)});
    ASSERT_TRUE(server.running());
    std::string spec = "redis://backstop@127.0.0.1:" + std::to_string(server.port()) + "/3";
    auto s = open_state(spec, with_password(kPassword));
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(all_operations(**s), "");

    auto wrong = open_state(spec, with_password("nope"));
    auto e = (*wrong)->check();
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("refused the password of user backstop"), std::string::npos)
        << e.error().message;
    // A user named in the URL needs a password.
    EXPECT_FALSE(open_state(spec).ok());
    EXPECT_FALSE(open_state("redis://backstop:pw@127.0.0.1/0", with_password("x")).ok());
}

// redis-password-file is a key file: refused, and named, when others can read it.
TEST(StateRedisAuth, PasswordFileReadLikeKeyFiles) {
    TempDir dir("backstop-redis-pw");
    std::string loose = dir.write("loose", std::string(kPassword) + "\n", 0644);
    std::string tight = dir.write("tight", std::string(kPassword) + "\n");
    Config c;
    c.state = "redis://backstop@127.0.0.1:6379/0";
    c.redis_password_file = loose;
    auto o = state_options(c);
    ASSERT_FALSE(o.ok());
    EXPECT_NE(o.error().message.find("redis-password-file: " + loose + ": mode 0644"),
              std::string::npos)
        << o.error().message;
    c.redis_password_file = tight;
    o = state_options(c);
    ASSERT_TRUE(o.ok()) << o.error().message;
    EXPECT_EQ(o->redis_password, kPassword);
    // A new password in the same file reopens the store at a reload, and the
    // identity does not carry the password itself.
    std::string id = state_identity(c, *o);
    EXPECT_EQ(id.find(kPassword), std::string::npos);
    dir.write("tight", "another\n");
    EXPECT_NE(state_identity(c, *state_options(c)), id);
}

TEST(StateRedisAuth, ConfigChecksTheRedisKeys) {
    auto check = [](const std::string& text) {
        auto c = parse_config_text(text, "t.conf", {});
        return c.ok() ? std::string() : c.error().message;
    };
    EXPECT_NE(check("state = rediss://r.example:6380/0\n").find("redis-ca-file: required"),
              std::string::npos);
    EXPECT_NE(check("state = redis://u@r.example/0\n").find("redis-password-file: required"),
              std::string::npos);
    EXPECT_NE(check("state = redis://r.example:65536/0\n").find("out of range"), std::string::npos);
    EXPECT_NE(check("state = redis-sentinel://s1:26379,s2:0/m\n").find("out of range"),
              std::string::npos);
    EXPECT_NE(check("state = redis-sentinel://s1:26379/\n").find("no master name"),
              std::string::npos);
    EXPECT_NE(check("state = memory\nredis-ca-file = /x\n").find("state is not Redis"),
              std::string::npos);
    EXPECT_EQ(check("state = rediss-sentinel://u@[::1]:26379,s2/mymaster/2\nredis-ca-file = "
                    "/ca.pem\nredis-password-file = /pw\n"),
              "");
}

namespace {

// A CA, a server certificate for IP 127.0.0.1 only, a client certificate, and a
// second CA that signed nothing of ours.
void make_pki(const TempDir& d) {
    std::string script =
        "set -e; cd '" + d.path() +
        "'; "
        "for ca in ca other; do openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
        "-subj /CN=$ca -keyout $ca.key -out $ca.pem 2>/dev/null; done; "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext; "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=redis -keyout server.key "
        "-out server.csr 2>/dev/null; "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-days 2 -extfile san.ext -out server.pem 2>/dev/null; "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=backstop -keyout client.key "
        "-out client.csr 2>/dev/null; "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-days 2 -out client.pem 2>/dev/null; chmod 600 *.key";
    ASSERT_EQ(std::system(script.c_str()), 0);
}

}  // namespace

TEST(StateRedisTls, VerifiedServerClientCertificateAndRefusals) {
    require_redis();
    TempDir d("backstop-redis-tls");
    make_pki(d);
    RedisServer server({"--tls-cert-file", d.file("server.pem"), "--tls-key-file",
                        d.file("server.key"), "--tls-ca-cert-file", d.file("ca.pem"),
                        "--tls-auth-clients", "yes", "--requirepass", kPassword},
                       true);
    ASSERT_TRUE(server.running());
    const std::string port = std::to_string(server.port());
    StateOptions o = with_password(kPassword);
    o.redis_ca_file = d.file("ca.pem");
    o.redis_cert_file = d.file("client.pem");
    o.redis_key_file = d.file("client.key");
    Config c;
    c.state = "rediss://127.0.0.1:" + port + "/1";
    c.redis_key_file = o.redis_key_file;
    o.redis_key_pem = state_options(c)->redis_key_pem;

    auto good = open_state("rediss://127.0.0.1:" + port + "/1", o);
    ASSERT_TRUE(good.ok()) << good.error().message;
    EXPECT_EQ(all_operations(**good), "");

    // A server whose certificate another CA signed.
    StateOptions other = o;
    other.redis_ca_file = d.file("other.pem");
    std::string e = failing("rediss://127.0.0.1:" + port + "/1", other);
    EXPECT_NE(e.find("TLS to 127.0.0.1:" + port + ": the server's certificate is not accepted: "),
              std::string::npos)
        << e;
    // The right CA, but the certificate names 127.0.0.1, not localhost.
    e = failing("rediss://localhost:" + port + "/1", o);
    EXPECT_NE(e.find("certificate is not accepted: hostname mismatch"), std::string::npos) << e;
    // No client certificate, where the server asks for one (TLS 1.3: the server
    // closes after the handshake, so the first command fails).
    StateOptions anonymous = o;
    anonymous.redis_cert_file.clear();
    anonymous.redis_key_pem.clear();
    e = failing("rediss://127.0.0.1:" + port + "/1", anonymous);
    EXPECT_NE(e.find("127.0.0.1:" + port), std::string::npos) << e;
    EXPECT_NE(e, "answered");
    // Plain TCP to a TLS port fails instead of hanging or passing.
    e = failing("redis://127.0.0.1:" + port + "/1", with_password(kPassword));
    EXPECT_NE(e, "answered");
    // rediss without a CA is refused when opened, naming the option.
    StateOptions no_ca = o;
    no_ca.redis_ca_file.clear();
    EXPECT_NE(failing("rediss://127.0.0.1:" + port, no_ca).find("redis-ca-file"),
              std::string::npos);
}

// rediss-sentinel as a fleet runs it: master, replica and Sentinel speak TLS only
// (replication and the Sentinel's own connections too), with one CA and one password.
// The store verifies each, works through the Sentinel, and follows a failover to the
// replica without a restart, its counts carried over.
TEST(StateRedisTls, SentinelFailoverOverTls) {
    require_redis();
    TempDir d("backstop-redis-tls-sentinel");
    make_pki(d);
    const std::vector<std::string> tls = {"--tls-cert-file",    d.file("server.pem"),
                                          "--tls-key-file",     d.file("server.key"),
                                          "--tls-ca-cert-file", d.file("ca.pem"),
                                          "--tls-auth-clients", "yes",
                                          "--tls-replication",  "yes",
                                          "--requirepass",      kPassword,
                                          "--masterauth",       kPassword};
    auto with = [&](std::vector<std::string> more) {
        more.insert(more.end(), tls.begin(), tls.end());
        return more;
    };
    RedisServer master(with({"--repl-diskless-sync-delay", "0"}), true);
    ASSERT_TRUE(master.running());
    RedisServer replica(with({"--replicaof", "127.0.0.1", std::to_string(master.port())}), true);
    ASSERT_TRUE(replica.running());
    const std::string cli_tls = "--tls --cacert '" + d.file("ca.pem") + "' --cert '" +
                                d.file("client.pem") + "' --key '" + d.file("client.key") + "'";
    bool synced = false;
    for (int i = 0; i < 50 && !synced; ++i)
        synced = replicas_caught_up(master.port(), 1, 100, kPassword, cli_tls);
    ASSERT_TRUE(synced) << "replica not in sync over TLS";
    RedisSentinel sentinel(master.port(), kPassword,
                           "tls-cert-file " + d.file("server.pem") + "\ntls-key-file " +
                               d.file("server.key") + "\ntls-ca-cert-file " + d.file("ca.pem") +
                               "\ntls-auth-clients yes\ntls-replication yes\n");
    ASSERT_TRUE(sentinel.running());
    StateOptions o = with_password(kPassword);
    o.redis_ca_file = d.file("ca.pem");
    o.redis_cert_file = d.file("client.pem");
    Config c;
    c.state = "rediss://127.0.0.1:1/1";
    c.redis_key_file = d.file("client.key");
    o.redis_key_pem = state_options(c)->redis_key_pem;
    const std::string spec =
        "rediss-sentinel://127.0.0.1:" + std::to_string(sentinel.port()) + "/mymaster/1";

    auto good = open_state(spec, o);
    ASSERT_TRUE(good.ok()) << good.error().message;
    EXPECT_EQ(all_operations(**good), "");

    // The Sentinel's certificate from a CA we do not trust: refused, and said so.
    StateOptions other = o;
    other.redis_ca_file = d.file("other.pem");
    std::string e = failing(spec, other);
    EXPECT_NE(e.find("certificate is not accepted"), std::string::npos) << e;
    // Plain redis-sentinel to the TLS-only Sentinel fails instead of passing.
    e = failing("redis-sentinel://127.0.0.1:" + std::to_string(sentinel.port()) + "/mymaster/1",
                with_password(kPassword));
    EXPECT_NE(e, "answered");

    // Ten counts, on the replica before the master dies; then the eleventh on the
    // promoted replica, found through the Sentinel over TLS.
    for (int i = 0; i < 10; ++i) {
        auto n = (*good)->hit("storm:b@ours.example", 1000, 600);
        ASSERT_TRUE(n.ok()) << n.error().message;
        EXPECT_EQ(*n, std::uint64_t(i + 1));
    }
    ASSERT_TRUE(replicas_caught_up(master.port(), 1, 2000, kPassword, cli_tls));
    master.stop();
    int failed = 0;
    std::uint64_t next = 0;
    for (int i = 0; i < 600 && next == 0; ++i) {  // hang guard: 30 s
        auto n = (*good)->hit("storm:b@ours.example", 1001, 600);
        if (n) {
            next = *n;
        } else {
            ++failed;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    EXPECT_GT(failed, 0);  // the switch was seen
    EXPECT_EQ(next, 11u);  // counted on where the first ten went
}
