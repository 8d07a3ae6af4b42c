// HMAC-SHA1 on OpenSSL's SHA-1 block function with the keyed inner and outer
// states computed once. OpenSSL 3's EVP_MAC re-initialisation duplicates the
// digest context (a malloc/free pair) on every call, which halves SRS throughput;
// a plain struct copy of SHA_CTX costs nothing. The low-level SHA-1 API is
// deprecated in 3.0 but present, and its results are checked against EVP_MAC in
// tests/unit/base/test_hmac.cpp.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "backstop/base/hmac.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>
#include <stdexcept>

namespace backstop {

struct HmacSha1::State {
    SHA_CTX inner;
    SHA_CTX outer;
};

HmacSha1::HmacSha1(std::string_view key) : state_(std::make_unique<State>()) {
    unsigned char block[SHA_CBLOCK] = {};
    if (key.size() > SHA_CBLOCK) {
        SHA1(reinterpret_cast<const unsigned char*>(key.data()), key.size(), block);
    } else {
        std::memcpy(block, key.data(), key.size());
    }
    unsigned char pad[SHA_CBLOCK];
    for (int i = 0; i < SHA_CBLOCK; ++i) pad[i] = block[i] ^ 0x36;
    SHA1_Init(&state_->inner);
    SHA1_Update(&state_->inner, pad, sizeof pad);
    for (int i = 0; i < SHA_CBLOCK; ++i) pad[i] = block[i] ^ 0x5c;
    SHA1_Init(&state_->outer);
    SHA1_Update(&state_->outer, pad, sizeof pad);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
}

HmacSha1::~HmacSha1() {
    if (state_) OPENSSL_cleanse(state_.get(), sizeof(State));
}
HmacSha1::HmacSha1(const HmacSha1& other) : state_(std::make_unique<State>(*other.state_)) {}
HmacSha1& HmacSha1::operator=(const HmacSha1& other) {
    if (this != &other) state_ = std::make_unique<State>(*other.state_);
    return *this;
}
HmacSha1::HmacSha1(HmacSha1&&) noexcept = default;
HmacSha1& HmacSha1::operator=(HmacSha1&&) noexcept = default;

HmacSha1::Digest HmacSha1::compute(std::initializer_list<std::string_view> parts) const {
    SHA_CTX ctx = state_->inner;
    for (std::string_view p : parts) SHA1_Update(&ctx, p.data(), p.size());
    unsigned char inner[SHA_DIGEST_LENGTH];
    SHA1_Final(inner, &ctx);
    ctx = state_->outer;
    SHA1_Update(&ctx, inner, sizeof inner);
    Digest out;
    SHA1_Final(out.data(), &ctx);
    return out;
}

std::array<std::uint8_t, 20> sha1_digest(std::string_view data) {
    std::array<std::uint8_t, 20> out{};
    unsigned int n = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha1(), nullptr) != 1 || n != 20)
        throw std::runtime_error("SHA-1 digest failed");
    return out;
}

std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view data) {
    std::array<std::uint8_t, 32> out{};
    std::size_t len = 0;
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                  reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
                  out.size(), &len) == nullptr ||
        len != out.size()) {
        throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
    }
    return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace backstop
