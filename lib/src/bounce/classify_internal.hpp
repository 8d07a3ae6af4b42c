// The classifier's steps, shared by its source files (classify*.cpp). Private to lib/src/bounce.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "backstop/bounce/classify.hpp"
#include "backstop/bounce/dsn.hpp"
#include "backstop/bounce/mime.hpp"

namespace backstop::detail {

// The entities of a message sorted by role.
struct Parts {
    std::vector<const MimeEntity*> dsn;    // message/delivery-status
    const MimeEntity* feedback = nullptr;  // message/feedback-report
    const MimeEntity* original = nullptr;  // the enclosed message (child of rfc822 part)
    // Human-readable text parts, in order: views of the entities' bodies, or of the
    // text made from an HTML part (kept in html_text).
    std::vector<std::string_view> notice;
    std::deque<std::string> html_text;
};

// Walks the MIME tree: DSN and feedback parts, the returned original, notice text.
void collect(const MimeEntity& e, Parts& p, bool top);
// The inline-quoted original in the notice text, if any: its header block.
bool inline_original(std::string_view notice, HeaderList& out, std::size_t* marker_at);

// Signs of a bounce (classify_signs.cpp).
bool from_system_address(const HeaderList& h);
bool bounce_subject(std::string_view subject);
bool bounce_body(std::string_view notice);
// Text that is a whole bounce report (its recipient list or transcript), not just a
// sentence about a failure.
bool reads_like_bounce_report(std::string_view text);
std::string detect_mta(const HeaderList& h, std::string_view notice, bool has_dsn);

// A mailing-list manager's refusal of a post (fml): fills out with the list address
// and the reason; true when the message is one.
bool list_refusal(const HeaderList& h, std::string_view notice, Classification& out);

// Recipients (classify_recipient.cpp).
bool usable_address(std::string_view a);
BounceRecipient from_dsn(const DsnRecipientFields& f, std::string_view notice, bool lookups_left);
void finish_recipient(BounceRecipient& r, std::string_view fallback_text, std::string command_hint,
                      bool only_recipient);

}  // namespace backstop::detail
