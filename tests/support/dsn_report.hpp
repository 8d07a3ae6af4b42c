// A minimal RFC 3464 report for one failed recipient, as the session and engine tests
// send it: the multipart/report parts (boundary "B") without the message header.
#pragma once

#include <string>

namespace backstop::testing {

inline std::string dsn_report_parts(const std::string& failed) {
    return "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
           "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
           "Reporting-MTA: dns; mx.remote.example\r\n\r\n"
           "Final-Recipient: rfc822; " +
           failed +
           "\r\n"
           "Action: failed\r\nStatus: 5.1.1\r\n"
           "Diagnostic-Code: smtp; 550 5.1.1 <" +
           failed +
           ">: Recipient address rejected: User unknown\r\n\r\n"
           "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
           "From: alice@ours.example\r\nTo: " +
           failed +
           "\r\nMessage-ID: <m1@ours.example>\r\n\r\n"
           "--B--\r\n";
}

}  // namespace backstop::testing
