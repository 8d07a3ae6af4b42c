// RFC 3464 delivery-status fields: one per-message block, then one block per
// recipient. Also reads the same fields when an MTA puts them in a text part.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backstop/bounce/mime.hpp"

namespace backstop {

struct DsnRecipientFields {
    std::string final_recipient;     // address only, the "rfc822;" type removed
    std::string original_recipient;  // likewise
    std::string action;              // lowercased: failed, delayed, delivered, relayed, expanded
    std::string status;              // "5.1.1" as given
    std::string diagnostic_type;     // "smtp", "x-unix", ... lowercased
    std::string diagnostic;          // Diagnostic-Code text without its type
    std::string remote_mta;
    HeaderList fields;  // every field of the block
};

struct DsnReport {
    HeaderList per_message;  // Reporting-MTA, Arrival-Date, X-Postfix-Sender, ...
    std::vector<DsnRecipientFields> recipients;
    bool empty() const { return recipients.empty(); }
};

// Parses a message/delivery-status body (LF line ends). Blocks without a recipient
// field count as per-message; several recipients in one block are split apart.
DsnReport parse_delivery_status(std::string_view body);

// "rfc822; <a@b>" -> "a@b"; also strips quotes, comments and a trailing dot.
std::string dsn_address(std::string_view value);

}  // namespace backstop
