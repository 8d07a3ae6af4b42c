// Watermarks: a header on outbound mail that proves a returned original came from
// us (DESIGN §5). Ours is an HMAC-SHA256; MailScanner's MD5 form is verified too so
// sites can migrate.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "backstop/base/clock.hpp"
#include "backstop/envelope/keyring.hpp"

namespace backstop {

enum class WatermarkStatus { absent, valid, invalid, expired };
std::string_view to_string(WatermarkStatus s);

struct WatermarkConfig {
    std::string header_name = "X-Backstop-Watermark";
    UnixTime lifetime = 14 * 86400;
    // MailScanner's "Watermark Secret"; empty: MailScanner marks are not checked.
    std::string mailscanner_secret;
};

// What the classifier found in a returned original.
struct WatermarkInput {
    std::string value;            // our header's value; empty when not found
    std::string mailscanner;      // a "...-MailScanner-Watermark" value; empty when not found
    std::string message_id;       // the original's Message-ID, as written
    std::string date;             // the original's Date header, as written
    std::string envelope_sender;  // the original's Return-Path / envelope sender
};

// Keys: the first signs, all verify. Methods are const and thread-safe.
class Watermark {
  public:
    Watermark(SecretList keys, WatermarkConfig config = {});

    const std::string& header_name() const { return config_.header_name; }
    const WatermarkConfig& config() const { return config_; }

    // "v=1; e=<expiry>; s=<base64url of 16 bytes of HMAC-SHA256>".
    std::string sign(std::string_view envelope_sender, std::string_view message_id,
                     UnixTime now) const;

    // Checks one header value. An empty value is 'absent'.
    WatermarkStatus verify(std::string_view header_value, std::string_view envelope_sender,
                           std::string_view message_id, UnixTime now) const;

    // MailScanner's "<expiry>@<md5_base64(expiry $% date $% secret $% msgid)>", where date
    // is the Date header as epoch seconds. 'absent' when no secret is configured.
    WatermarkStatus verify_mailscanner(std::string_view header_value, std::string_view date_header,
                                       std::string_view message_id, UnixTime now) const;
    // The MailScanner value for the given inputs (tests, migration tooling).
    static std::string mailscanner_value(std::string_view expiry, std::string_view date_header,
                                         std::string_view secret, std::string_view message_id);

    // Our header first; MailScanner's when ours is absent.
    WatermarkStatus check(const WatermarkInput& found, UnixTime now) const;

  private:
    std::string mac(std::string_view key, std::string_view expiry, std::string_view sender,
                    std::string_view message_id) const;

    SecretList keys_;
    WatermarkConfig config_;
};

// RFC 5322 date (obsolete forms too) to epoch seconds; nullopt when unreadable.
std::optional<UnixTime> parse_rfc5322_date(std::string_view text);

}  // namespace backstop
