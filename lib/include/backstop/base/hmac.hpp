// HMAC with the key schedule done once: signing millions of addresses must not
// rehash the key or allocate per call.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string_view>

namespace backstop {

// HMAC-SHA1 keyed once; compute() is const, allocation-free and thread-safe.
class HmacSha1 {
  public:
    static constexpr std::size_t kDigestSize = 20;
    using Digest = std::array<std::uint8_t, kDigestSize>;

    explicit HmacSha1(std::string_view key);
    ~HmacSha1();
    HmacSha1(const HmacSha1&);
    HmacSha1& operator=(const HmacSha1&);
    HmacSha1(HmacSha1&&) noexcept;
    HmacSha1& operator=(HmacSha1&&) noexcept;

    // MAC over the concatenation of the parts.
    Digest compute(std::initializer_list<std::string_view> parts) const;

  private:
    struct State;
    std::unique_ptr<State> state_;
};

// Plain SHA-1 of data (OpenSSL's EVP digest): postsrsd 2's alias of a long sender.
std::array<std::uint8_t, 20> sha1_digest(std::string_view data);

// HMAC-SHA256 through OpenSSL's EVP_MAC (not on a hot path).
std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view data);

// Constant-time equality of two equal-length byte ranges (false if lengths differ).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace backstop
