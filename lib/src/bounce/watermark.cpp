// Watermark signing and checking (DESIGN §5). The MAC covers the expiry, the
// lowercased envelope sender and the Message-ID, so a bounce of a message we did
// not send (a forged sender: backscatter) carries no valid mark.
#include "backstop/bounce/watermark.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <string>

#include "backstop/base/encoding.hpp"
#include "backstop/base/hmac.hpp"
#include "backstop/envelope/normalize.hpp"
#include "mime_text.hpp"

namespace backstop {

namespace {

constexpr std::size_t kMacBytes = 16;

// The sender as both sides see it: brackets gone, BATV and SRS tags stripped (the
// returned original's Return-Path carries the tagged form we put on the wire), then
// lowercased.
std::string normalize_sender(std::string_view sender) {
    std::string_view s = text::trim(sender);
    if (s.starts_with("<")) s.remove_prefix(1);
    if (s.ends_with(">")) s.remove_suffix(1);
    return ascii_lower(normalize_address(text::trim(s)));
}

bool parse_int(std::string_view s, std::int64_t& out) {
    s = text::trim(s);
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

// MD5 of data in unpadded standard base64, as Perl's Digest::MD5::md5_base64.
std::string md5_base64(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr);
    std::string b64 = base64_encode(digest, len, Base64Alphabet::standard);
    while (!b64.empty() && b64.back() == '=') b64.pop_back();
    return b64;
}

}  // namespace

std::string_view to_string(WatermarkStatus s) {
    switch (s) {
        case WatermarkStatus::valid:
            return "valid";
        case WatermarkStatus::invalid:
            return "invalid";
        case WatermarkStatus::expired:
            return "expired";
        case WatermarkStatus::absent:
            break;
    }
    return "absent";
}

Watermark::Watermark(SecretList keys, WatermarkConfig config)
    : keys_(std::move(keys)), config_(std::move(config)) {}

std::string Watermark::mac(std::string_view key, std::string_view expiry, std::string_view sender,
                           std::string_view message_id) const {
    std::string data;
    data.reserve(expiry.size() + sender.size() + message_id.size());
    data.append(expiry).append(normalize_sender(sender)).append(text::trim(message_id));
    auto digest = hmac_sha256(key, data);
    return base64_encode(digest.data(), kMacBytes, Base64Alphabet::url);
}

std::string Watermark::sign(std::string_view envelope_sender, std::string_view message_id,
                            UnixTime now) const {
    if (keys_.secrets.empty()) return {};
    std::string expiry = std::to_string(now + config_.lifetime);
    return "v=1; e=" + expiry +
           "; s=" + mac(keys_.secrets.front(), expiry, envelope_sender, message_id);
}

WatermarkStatus Watermark::verify(std::string_view value, std::string_view envelope_sender,
                                  std::string_view message_id, UnixTime now) const {
    if (text::trim(value).empty()) return WatermarkStatus::absent;
    std::string_view version, expiry, sig;
    std::size_t pos = 0;
    while (pos < value.size()) {
        std::size_t semi = value.find(';', pos);
        std::string_view tag =
            text::trim(value.substr(pos, semi == std::string_view::npos ? semi : semi - pos));
        std::size_t eq = tag.find('=');
        if (eq != std::string_view::npos) {
            std::string_view k = text::trim(tag.substr(0, eq));
            std::string_view v = text::trim(tag.substr(eq + 1));
            if (k == "v")
                version = v;
            else if (k == "e")
                expiry = v;
            else if (k == "s")
                sig = v;
        }
        if (semi == std::string_view::npos) break;
        pos = semi + 1;
    }
    std::int64_t e = 0;
    if (version != "1" || !parse_int(expiry, e) || sig.empty()) return WatermarkStatus::invalid;
    for (const auto& key : keys_.secrets) {
        std::string expected = mac(key, expiry, envelope_sender, message_id);
        if (constant_time_equal(expected, sig))
            return e < now ? WatermarkStatus::expired : WatermarkStatus::valid;
    }
    return WatermarkStatus::invalid;
}

std::string Watermark::mailscanner_value(std::string_view expiry, std::string_view date_header,
                                         std::string_view secret, std::string_view message_id) {
    auto when = parse_rfc5322_date(date_header);
    std::string date = when ? std::to_string(*when) : std::string();
    std::string input;
    input.append(expiry).append("$%").append(date).append("$%").append(secret).append("$%").append(
        text::trim(message_id));
    return std::string(expiry) + "@" + md5_base64(input);
}

WatermarkStatus Watermark::verify_mailscanner(std::string_view value, std::string_view date_header,
                                              std::string_view message_id, UnixTime now) const {
    if (config_.mailscanner_secret.empty() || text::trim(value).empty())
        return WatermarkStatus::absent;
    std::string_view v = text::trim(value);
    std::size_t at = v.find('@');
    if (at == std::string_view::npos) return WatermarkStatus::invalid;
    std::string_view expiry = v.substr(0, at);
    std::string_view whole = expiry.substr(0, expiry.find('.'));
    std::int64_t e = 0;
    if (!parse_int(whole, e)) return WatermarkStatus::invalid;
    std::string expected =
        mailscanner_value(expiry, date_header, config_.mailscanner_secret, message_id);
    if (!constant_time_equal(expected, v)) return WatermarkStatus::invalid;
    return e < now ? WatermarkStatus::expired : WatermarkStatus::valid;
}

WatermarkStatus Watermark::check(const WatermarkInput& found, UnixTime now) const {
    WatermarkStatus ours = verify(found.value, found.envelope_sender, found.message_id, now);
    if (ours != WatermarkStatus::absent) return ours;
    return verify_mailscanner(found.mailscanner, found.date, found.message_id, now);
}

}  // namespace backstop
