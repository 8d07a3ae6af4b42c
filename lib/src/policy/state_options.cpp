#include "backstop/policy/state_options.hpp"

#include "backstop/base/hmac.hpp"
#include "backstop/envelope/keyring.hpp"

namespace backstop {

namespace {

// The first line of a key file, without its line end.
Result<std::string, Failure> read_secret(const std::string& key, const std::string& path) {
    auto text = read_key_file(path);
    if (!text) return Failure{key + ": " + text.error().message};
    std::string line = text->substr(0, text->find('\n'));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return Failure{key + ": " + path + ": the first line is empty"};
    return line;
}

}  // namespace

Result<StateOptions, Failure> state_options(const Config& c) {
    StateOptions o;
    o.bounce_ttl = UnixTime(c.bounce_expiry) * 86400;
    if (!c.redis_password_file.empty()) {
        auto p = read_secret("redis-password-file", c.redis_password_file);
        if (!p) return p.error();
        o.redis_password = *p;
    }
    o.redis_ca_file = c.redis_ca_file;
    o.redis_cert_file = c.redis_cert_file;
    if (!c.redis_key_file.empty()) {
        auto k = read_key_file(c.redis_key_file);
        if (!k) return Failure{"redis-key-file: " + k.error().message};
        o.redis_key_pem = *k;
        o.redis_key_file = c.redis_key_file;
    }
    return o;
}

std::string state_identity(const Config& c, const StateOptions& o) {
    std::string id = c.state + " bounce-expiry=" + std::to_string(c.bounce_expiry);
    if (c.state.find("://") == std::string::npos) return id;
    static const char* kHex = "0123456789abcdef";
    std::string digest;
    for (auto b : hmac_sha256("backstop state identity", o.redis_password + '\n' + o.redis_key_pem))
        digest += {kHex[b >> 4], kHex[b & 15]};
    return id + " ca=" + c.redis_ca_file + " cert=" + c.redis_cert_file + " secrets=" + digest;
}

Result<std::shared_ptr<StateStore>, Failure> open_configured_state(const Config& c) {
    auto o = state_options(c);
    if (!o) return o.error();
    return open_state(c.state, *o);
}

}  // namespace backstop
