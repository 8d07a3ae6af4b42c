#include "backstop/base/hmac.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "backstop/base/encoding.hpp"

using namespace backstop;

namespace {

std::string evp_hmac_sha1_hex(std::string_view key, std::string_view data) {
    unsigned char out[20];
    std::size_t len = 0;
    EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA1", nullptr, key.data(), key.size(),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, sizeof out,
              &len);
    return hex_encode(out, len);
}

}  // namespace

TEST(HmacSha1, Rfc2202Vectors) {
    HmacSha1 h("Jefe");
    auto d = h.compute({"what do ya want ", "for nothing?"});
    EXPECT_EQ(hex_encode(d.data(), d.size()), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    HmacSha1 longkey(std::string(80, '\xaa'));
    auto d2 = longkey.compute({"Test Using Larger Than Block-Size Key - Hash Key First"});
    EXPECT_EQ(hex_encode(d2.data(), d2.size()), "aa4ae5e15272d00e95705637ce8a3b55ed402112");
}

TEST(HmacSha1, MatchesEvpMac) {
    for (std::string key :
         {std::string(""), std::string("k"), std::string(64, 'x'), std::string(65, 'y')}) {
        HmacSha1 h(key);
        for (std::string data :
             {std::string(""), std::string("2wotherdomain.comtest"), std::string(300, 'z')}) {
            auto d = h.compute({data});
            EXPECT_EQ(hex_encode(d.data(), d.size()), evp_hmac_sha1_hex(key, data));
        }
    }
}

TEST(HmacSha1, CopiesAreIndependent) {
    HmacSha1 a("one");
    HmacSha1 b = a;
    HmacSha1 c("two");
    b = c;
    EXPECT_EQ(a.compute({"x"}), HmacSha1("one").compute({"x"}));
    EXPECT_EQ(b.compute({"x"}), c.compute({"x"}));
}

TEST(HmacSha256, Rfc4231Vector) {
    auto d = hmac_sha256("Jefe", "what do ya want for nothing?");
    EXPECT_EQ(hex_encode(d.data(), d.size()),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(ConstantTimeEqual, Basics) {
    EXPECT_TRUE(constant_time_equal("abc", "abc"));
    EXPECT_FALSE(constant_time_equal("abc", "abd"));
    EXPECT_FALSE(constant_time_equal("abc", "ab"));
    EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Encoding, Base64) {
    const std::uint8_t data[] = {0xfb, 0xff, 0x01};
    EXPECT_EQ(base64_encode(data, 3), "+/8B");
    EXPECT_EQ(base64_encode(data, 3, Base64Alphabet::url), "-_8B");
    EXPECT_EQ(base64_encode(data, 2), "+/8=");
    EXPECT_EQ(base64_encode(data, 2, Base64Alphabet::url), "-_8");
    EXPECT_EQ(*base64_decode("-_8B"), std::string("\xfb\xff\x01"));
    EXPECT_EQ(*base64_decode("+/8="), std::string("\xfb\xff"));
    EXPECT_FALSE(base64_decode("a*b").has_value());
}

TEST(Encoding, Base32) {
    EXPECT_EQ(base32_value('A'), 0);
    EXPECT_EQ(base32_value('w'), 22);
    EXPECT_EQ(base32_value('7'), 31);
    EXPECT_EQ(base32_value('1'), -1);
    EXPECT_EQ(base32_char(26), '2');
}
