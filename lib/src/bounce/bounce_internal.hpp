// Pieces of the classifier shared between its source files. Private to lib/src/bounce.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backstop/bounce/classify.hpp"
#include "backstop/bounce/mime.hpp"
#include "backstop/bounce/reason.hpp"

namespace backstop::detail {

// At most this many recipients are reported per message: real bounces list a handful,
// and the per-recipient work must stay bounded on hostile input.
constexpr std::size_t kMaxRecipients = 256;
// Beyond this many recipients, the notice text is not searched per recipient.
constexpr std::size_t kMaxTextLookups = 32;

// A recipient found in human-readable bounce text.
struct TextRecipient {
    std::string address;
    std::string diagnostic;  // the lines about it, whitespace collapsed
};

// Addresses never reported as failed recipients: the bounce's own From and To.
struct TextScanContext {
    std::vector<std::string> exclude;  // lowercased addresses
};

// Where an inline-quoted original starts in bounce text (the marker line's start),
// or npos.
std::size_t find_original_marker(std::string_view text, std::size_t* after_marker);

// Recipients and their diagnostics in a vendor's text notice (qmail, Exim, Gmail,
// Yahoo, DragonFly, Sendmail transcripts, ...).
std::vector<TextRecipient> scan_text_recipients(std::string_view notice,
                                                const TextScanContext& ctx);

// The paragraph(s) about an address in a notice: used when a DSN gives no diagnostic.
std::string text_near_address(std::string_view notice, std::string_view address);

// Addresses in a header value ("A <a@b>, c@d").
std::vector<std::string> header_addresses(std::string_view value);
// A token that looks like local@domain.
bool looks_like_address(std::string_view s);
// Lowercase the domain, strip brackets and quotes.
std::string clean_address(std::string_view s);
// Whitespace runs to one space, trimmed, capped.
std::string one_line(std::string_view s, std::size_t max = 1000);

// Amazon SES JSON notifications (Bounce, Complaint, Delivery). True when handled.
bool parse_ses_json(std::string_view body, Classification& out);

// RFC 3834 auto-replies and vacation notices.
bool is_autoreply(const HeaderList& headers, std::string_view subject, std::string_view body);
// Challenge-response ("please confirm you are human").
bool is_challenge(const HeaderList& headers, std::string_view subject, std::string_view body);

// Fills 'original' from the headers of a returned message.
void describe_original(const HeaderList& headers, std::string_view header_name,
                       OriginalMessage& original);

}  // namespace backstop::detail
