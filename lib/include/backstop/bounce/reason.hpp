// Why a delivery failed, in the vocabulary of shared/corpus/sisimai/README.md
// (userunknown, mailboxfull, hostunknown, filtered, ...), and whether that failure is
// permanent for the address (a hard bounce).
#pragma once

#include <string>
#include <string_view>

namespace backstop {

// The reason from the status code ("5.1.1"), SMTP reply code ("550") and the
// remote server's text; "undefined" when nothing points anywhere.
std::string bounce_reason(std::string_view status, std::string_view reply_code,
                          std::string_view diagnostic);

// The same with the SMTP command the failure answered ("RCPT", "DATA", "MAIL",
// "CONN" or ""), which changes the meaning of some replies.
std::string bounce_reason(std::string_view status, std::string_view reply_code,
                          std::string_view diagnostic, std::string_view command);

// The SMTP command a bounce text says the failure answered, or "".
std::string smtp_command_of(std::string_view text);

// The reason a status code alone implies ("" when the code says nothing specific).
std::string_view reason_from_status(std::string_view status);

// Hard: userunknown, hostunknown, hasmoved; notaccept with a 5xx reply or status.
bool is_hard_bounce(std::string_view reason, std::string_view reply_code, std::string_view status);

// First RFC 3463 status ("5.1.1") in text, or "".
std::string find_status_code(std::string_view text);
// The same from offset 'from'; *end (if given) is set past the code found.
std::string find_status_code_from(std::string_view text, std::size_t from, std::size_t* end);
// The last status in text: in "554 4.4.7 expired <421 4.4.2 timed out>" the remote
// server's own code comes last.
std::string find_last_status_code(std::string_view text);
// First SMTP failure reply code ("550") in text, else the first success code, or "".
std::string find_reply_code(std::string_view text);
// Any reply code from offset 'from'; *end (if given) is set past it.
std::string find_reply_code_from(std::string_view text, std::size_t from, std::size_t* end);

}  // namespace backstop
