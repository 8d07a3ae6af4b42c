// TCP or TLS to Redis with a deadline on every step. TLS runs over memory BIOs: we
// move the bytes between OpenSSL and the non-blocking socket ourselves, so one
// poll() loop serves both, and send(MSG_NOSIGNAL) never raises SIGPIPE.
#include "redis_connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace backstop {

namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left < 0 ? 0 : int(left);
}

std::string ssl_error_text() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "connection closed during the handshake";
    const char* reason = ERR_reason_error_string(e);
    return reason ? reason : "error " + std::to_string(e);
}

bool is_ip(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::string RedisAddress::text() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
}

std::string redis_error_text(const redisReply* r) {
    if (!r) return "no reply";
    if (r->type == REDIS_REPLY_ERROR) return std::string(r->str, r->len);
    return "unexpected reply (type " + std::to_string(r->type) + ")";
}

Result<std::shared_ptr<SSL_CTX>, Failure> make_redis_tls(const std::string& ca_file,
                                                         const std::string& cert_file,
                                                         const std::string& key_pem,
                                                         const std::string& key_origin) {
    std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    if (!ctx) return Failure{"TLS: cannot make a context: " + ssl_error_text()};
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (ca_file.empty()) return Failure{"TLS needs redis-ca-file (the CA of the server)"};
    if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
        return Failure{"redis-ca-file " + ca_file + ": not a readable PEM CA certificate (" +
                       ssl_error_text() + ")"};
    if (cert_file.empty() != key_pem.empty())
        return Failure{"redis-cert-file and redis-key-file go together: set both or neither"};
    if (!cert_file.empty()) {
        if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1)
            return Failure{"redis-cert-file " + cert_file + ": not a readable PEM certificate (" +
                           ssl_error_text() + ")"};
        std::unique_ptr<BIO, decltype(&BIO_free)> bio(
            BIO_new_mem_buf(key_pem.data(), int(key_pem.size())), BIO_free);
        EVP_PKEY* key =
            bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
        if (!key) {
            ERR_clear_error();
            return Failure{"redis-key-file " + key_origin + ": not a PEM private key"};
        }
        const bool used = SSL_CTX_use_PrivateKey(ctx.get(), key) == 1;
        EVP_PKEY_free(key);
        if (!used || SSL_CTX_check_private_key(ctx.get()) != 1) {
            ERR_clear_error();
            return Failure{"redis-key-file " + key_origin + ": does not match redis-cert-file " +
                           cert_file};
        }
    }
    return ctx;
}

Result<std::unique_ptr<RedisConnection>, Failure> RedisConnection::open(const RedisAddress& at,
                                                                        const RedisLogin& login,
                                                                        int db) {
    std::unique_ptr<RedisConnection> c(new RedisConnection());
    c->where_ = at.text();
    c->timeout_ms_ = login.timeout_ms;
    const auto deadline = Clock::now() + std::chrono::milliseconds(login.timeout_ms);
    c->reader_ = redisReaderCreate();
    if (!c->reader_) return Failure{"out of memory"};
    if (auto why = c->connect_tcp(at, deadline); !why.empty())
        return Failure{"cannot connect to " + c->where_ + ": " + why};
    if (login.tls) {
        c->ssl_ = SSL_new(login.tls.get());
        c->in_ = BIO_new(BIO_s_mem());
        c->out_ = BIO_new(BIO_s_mem());
        if (!c->ssl_ || !c->in_ || !c->out_) {
            if (c->in_ && !c->ssl_) BIO_free(c->in_);
            if (c->out_ && !c->ssl_) BIO_free(c->out_);
            c->in_ = c->out_ = nullptr;
            return Failure{"TLS to " + c->where_ + ": out of memory"};
        }
        SSL_set_bio(c->ssl_, c->in_, c->out_);
        if (auto why = c->handshake(at, deadline); !why.empty())
            return Failure{"TLS to " + c->where_ + ": " + why};
    }
    auto step = [&](const std::vector<std::string>& argv,
                    const std::string& what) -> std::optional<Failure> {
        auto r = c->round_trip(argv, deadline);
        if (!r) return r.error();
        if ((*r)->type == REDIS_REPLY_ERROR) {
            std::string e = redis_error_text(r->get());
            if (e.rfind("NOAUTH", 0) == 0)
                return Failure{c->where_ + " requires a password (" + e +
                               "): set redis-password-file"};
            if (e.rfind("WRONGPASS", 0) == 0)
                return Failure{
                    c->where_ + " refused the password of " +
                    (login.user.empty() ? std::string("the default user") : "user " + login.user) +
                    " (" + e + ")"};
            return Failure{c->where_ + ": " + what + " refused: " + e};
        }
        return std::nullopt;
    };
    std::optional<Failure> f;
    if (!login.password.empty()) {
        f = login.user.empty() ? step({"AUTH", login.password}, "AUTH")
                               : step({"AUTH", login.user, login.password}, "AUTH");
    } else if (!login.user.empty()) {
        return Failure{"state: user " + login.user + " needs redis-password-file"};
    } else {
        f = step({"PING"}, "PING");
    }
    if (!f && db > 0) f = step({"SELECT", std::to_string(db)}, "SELECT " + std::to_string(db));
    if (f) return *f;
    return c;
}

RedisConnection::~RedisConnection() {
    if (ssl_) SSL_free(ssl_);  // frees in_ and out_
    if (fd_ >= 0) ::close(fd_);
    if (reader_) redisReaderFree(reader_);
}

Failure RedisConnection::fail(const std::string& why) {
    broken_ = true;
    return Failure{where_ + ": " + why};
}

std::string RedisConnection::wait(short events, Deadline deadline) {
    for (;;) {
        pollfd p{fd_, events, 0};
        int n = ::poll(&p, 1, ms_left(deadline));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::string("poll: ") + std::strerror(errno);
        if (n == 0) return "no answer within " + std::to_string(timeout_ms_) + " ms";
        return {};
    }
}

std::string RedisConnection::connect_tcp(const RedisAddress& at, Deadline deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    std::string port = std::to_string(at.port);
    if (int e = ::getaddrinfo(at.host.c_str(), port.c_str(), &hints, &list); e != 0)
        return std::string("cannot resolve the host: ") + gai_strerror(e);
    std::string why = "no address";
    for (addrinfo* a = list; a; a = a->ai_next) {
        fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd_ < 0) {
            why = std::strerror(errno);
            continue;
        }
        int rc = ::connect(fd_, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            why = wait(POLLOUT, deadline);
            int err = 0;
            socklen_t len = sizeof err;
            if (why.empty() && ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) == 0)
                rc = err == 0 ? 0 : -1, errno = err;
            else if (why.empty())
                why = std::strerror(errno);
        } else if (rc != 0) {
            why = std::strerror(errno);
        }
        if (rc == 0) {
            int one = 1;
            ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            ::freeaddrinfo(list);
            return {};
        }
        if (why.empty()) why = std::strerror(errno);
        ::close(fd_);
        fd_ = -1;
    }
    ::freeaddrinfo(list);
    return why;
}

std::string RedisConnection::flush_tls(Deadline deadline) {
    char buf[16384];
    while (BIO_ctrl_pending(out_) > 0) {
        int n = BIO_read(out_, buf, sizeof buf);
        if (n <= 0) break;
        if (auto why = send_all(buf, std::size_t(n), deadline); !why.empty()) return why;
    }
    return {};
}

std::string RedisConnection::handshake(const RedisAddress& at, Deadline deadline) {
    // The certificate must name what we connected to: an IP address or a host name.
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (is_ip(at.host)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, at.host.c_str());
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, at.host.c_str(), 0);
        SSL_set_tlsext_host_name(ssl_, at.host.c_str());
    }
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(ssl_);
        int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
        if (auto why = flush_tls(deadline); !why.empty()) return why;
        if (rc == 1) return {};
        if (err == SSL_ERROR_WANT_READ) {
            if (auto why = receive(deadline); !why.empty()) return why;
            continue;
        }
        long v = SSL_get_verify_result(ssl_);
        if (v != X509_V_OK) {
            ERR_clear_error();
            return std::string("the server's certificate is not accepted: ") +
                   X509_verify_cert_error_string(v);
        }
        return "handshake failed: " + ssl_error_text();
    }
}

std::string RedisConnection::send_all(const char* data, std::size_t size, Deadline deadline) {
    while (size > 0) {
        ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            size -= std::size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (auto why = wait(POLLOUT, deadline); !why.empty()) return why;
            continue;
        }
        return std::string("send: ") + std::strerror(errno);
    }
    return {};
}

std::string RedisConnection::receive(Deadline deadline) {
    char buf[16384];
    for (;;) {
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            if (ssl_) {
                BIO_write(in_, buf, int(n));
            } else if (redisReaderFeed(reader_, buf, std::size_t(n)) != REDIS_OK) {
                return "cannot parse the reply";
            }
            return {};
        }
        if (n == 0) return "connection closed by the server";
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return std::string("recv: ") + std::strerror(errno);
        if (auto why = wait(POLLIN, deadline); !why.empty()) return why;
    }
}

Result<RedisReplyPtr, Failure> RedisConnection::command(const std::vector<std::string>& argv) {
    if (broken_) return Failure{where_ + ": connection lost"};
    return round_trip(argv, Clock::now() + std::chrono::milliseconds(timeout_ms_));
}

Result<RedisReplyPtr, Failure> RedisConnection::round_trip(const std::vector<std::string>& argv,
                                                           Deadline deadline) {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
        args.push_back(a.data());
        lens.push_back(a.size());
    }
    char* wire = nullptr;
    int len = redisFormatCommandArgv(&wire, int(args.size()), args.data(), lens.data());
    if (len < 0) return fail("out of memory");
    std::unique_ptr<char, void (*)(char*)> hold(wire, redisFreeCommand);
    if (ssl_) {
        ERR_clear_error();
        if (SSL_write(ssl_, wire, len) != len) return fail("TLS write: " + ssl_error_text());
        if (auto why = flush_tls(deadline); !why.empty()) return fail(why);
    } else if (auto why = send_all(wire, std::size_t(len), deadline); !why.empty()) {
        return fail(why);
    }
    for (;;) {
        void* raw = nullptr;
        if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return fail("cannot parse the reply");
        if (raw) return RedisReplyPtr(static_cast<redisReply*>(raw));
        if (!ssl_) {
            if (auto why = receive(deadline); !why.empty()) return fail(why);
            continue;
        }
        char buf[16384];
        ERR_clear_error();
        int n = SSL_read(ssl_, buf, sizeof buf);
        if (n > 0) {
            if (redisReaderFeed(reader_, buf, std::size_t(n)) != REDIS_OK)
                return fail("cannot parse the reply");
            continue;
        }
        int err = SSL_get_error(ssl_, n);
        if (auto why = flush_tls(deadline); !why.empty()) return fail(why);
        if (err == SSL_ERROR_WANT_READ) {
            if (auto why = receive(deadline); !why.empty()) return fail(why);
            continue;
        }
        if (err == SSL_ERROR_ZERO_RETURN) return fail("connection closed by the server");
        return fail("TLS read: " + ssl_error_text());
    }
}

}  // namespace backstop
