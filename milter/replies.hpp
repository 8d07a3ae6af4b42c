// What both milter engines answer, so that they answer alike: the reply texts, how a
// client is told to be a local submission, the macros asked for, and the changes an
// end of message makes, in the order the MTA gets them. Each engine only encodes
// these (native/connection.cpp as packets, libmilter/engine.cpp as smfi_* calls).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backstop/policy/session.hpp"

namespace backstop::milter {

// The macros asked for (SETSYMLIST) at MAIL, RCPT and end of message; none elsewhere.
// i: the queue ID for log lines; {auth_authen}: an authenticated client is outbound;
// {rcpt_*}: where Sendmail has routed a recipient (Session::rcpt).
inline constexpr const char* kMailMacros = "i {auth_authen}";
inline constexpr const char* kRcptMacros = "i {rcpt_mailer} {rcpt_host} {rcpt_addr}";
inline constexpr const char* kEomMacros = "i";

// A reply text for the MTA: no CR/LF/NUL, '%' doubled (Sendmail reads it as a
// format), at most 970 bytes.
std::string reply_text(std::string_view text);

// What the MTA's connect data says about the client (captured from Postfix 3.7 and
// Sendmail 8.17): family '4', '6', 'L' (unix socket) or 'U' (unknown), the port
// (0 when none) and address as text.
ClientKind client_kind(char family, std::uint16_t port, std::string_view address,
                       std::string_view hostname);

// One change at end of message.
struct Modification {
    enum class Kind { change_from, remove_recipient, add_recipient, add_header, remove_header };
    Kind kind;
    std::string name;   // the address (in <> but for remove_recipient) or header name
    std::string value;  // add_header: the header's value
    int index = 0;      // remove_header: which header of that name, from 1
    // For the log, when the MTA does not allow it: "adding recipient <a@b>".
    std::string describe() const;
    // The action (SMFIF_*) the MTA must have allowed at negotiation for it.
    std::uint32_t action() const;
};

// The changes of an end of message that goes on (proceed or accept): new sender,
// recipients removed then added, headers added and removed. Nothing otherwise.
std::vector<Modification> modifications(const EndOfMessage& eom);

// A 451 with this enhanced status and text.
Decision tempfail_451(std::string xcode, std::string text);

// The answer when the MTA does not allow a change the message needs.
Decision changes_not_allowed();

// The answer to a command that failed inside backstop: a tempfail, never an accept.
Decision internal_error_reply();

}  // namespace backstop::milter
