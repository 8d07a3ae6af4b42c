// One connection to a Redis server (or Sentinel): TCP or TLS, AUTH, SELECT, and one
// command round trip at a time, each step under a deadline. hiredis encodes commands
// and parses replies (RESP); the transport is ours, because Debian 12's hiredis 0.14
// has no TLS, and our own socket lets TLS and plain TCP share one deadline per call.
#pragma once

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backstop/base/result.hpp"

namespace backstop {

struct RedisReplyFree {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyFree>;

struct RedisAddress {
    std::string host;
    int port = 6379;
    std::string text() const;  // host:port, [v6]:port
};

// Who we are to the server and how we talk to it; shared by every connection.
struct RedisLogin {
    std::string user;              // ACL user; empty: the default user
    std::string password;          // empty: no AUTH
    std::shared_ptr<SSL_CTX> tls;  // null: plain TCP
    int timeout_ms = 250;          // each step: connect+login, or one command
};

// The client TLS context: the CA that signs the server's certificate, and an
// optional client certificate and key (the key as PEM text, already read under the
// key-file rules). Errors name the file.
Result<std::shared_ptr<SSL_CTX>, Failure> make_redis_tls(const std::string& ca_file,
                                                         const std::string& cert_file,
                                                         const std::string& key_pem,
                                                         const std::string& key_origin);

class RedisConnection {
  public:
    // Connects, TLS handshake (the certificate must name the host or IP), AUTH when a
    // password is set (else a PING, so that a NOAUTH server is named at once), SELECT
    // db when db > 0. Errors say which step failed and why; never the password.
    static Result<std::unique_ptr<RedisConnection>, Failure> open(const RedisAddress& at,
                                                                  const RedisLogin& login, int db);
    ~RedisConnection();
    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;

    // One command, one reply (an error reply is a reply). A Failure means the
    // connection is unusable (broken() is then true).
    Result<RedisReplyPtr, Failure> command(const std::vector<std::string>& argv);
    bool broken() const { return broken_; }

  private:
    using Deadline = std::chrono::steady_clock::time_point;
    RedisConnection() = default;
    Failure fail(const std::string& why);
    std::string connect_tcp(const RedisAddress& at, Deadline deadline);
    std::string handshake(const RedisAddress& at, Deadline deadline);
    std::string send_all(const char* data, std::size_t size, Deadline deadline);
    // Some bytes of the reply into the reader; empty on success.
    std::string receive(Deadline deadline);
    std::string flush_tls(Deadline deadline);
    std::string wait(short events, Deadline deadline);
    Result<RedisReplyPtr, Failure> round_trip(const std::vector<std::string>& argv,
                                              Deadline deadline);

    int fd_ = -1;
    SSL* ssl_ = nullptr;
    BIO* in_ = nullptr;   // bytes from the socket, for OpenSSL (owned by ssl_)
    BIO* out_ = nullptr;  // bytes from OpenSSL, for the socket (owned by ssl_)
    redisReader* reader_ = nullptr;
    std::string where_;  // host:port, for messages
    int timeout_ms_ = 250;
    bool broken_ = false;
};

// "ERR ..." text of an error reply, or a description of an unexpected one.
std::string redis_error_text(const redisReply* r);

}  // namespace backstop
