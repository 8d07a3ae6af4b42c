// What Postfix 3.7.11 and Sendmail 8.17.1.9 (Debian 12) sent to backstop-milter,
// captured packet by packet with a logging proxy between the MTA and the milter
// (each packet: command byte, then data; the length prefix is added when sent).
// The milter's negotiation asked for what backstop asks for, so these are the
// packets backstop gets; Postfix sends its default connect macros all the same.
// Queue IDs, ports and dates are those of the capture.
#pragma once

#include <string>
#include <vector>

namespace backstop::engine_test {

// Postfix 3.7.11: sendmail -f alice@ours.example bob@remote.example (pickup, cleanup,
// non_smtpd_milters).
inline const std::vector<std::string>& postfix_sendmail_submission() {
    static const std::vector<std::string> packets = {
        std::string("O\000\000\000\006\000\000\001\377\000\037\377\377", 13),
        std::string("DCj\000vm\000{daemon_name}\000vm\000{daemon_addr}\000127.0.0."
                    "1\000v\000Postfix 3.7.11\000_\000localhost [127.0.0.1]\000",
                    89),
        std::string("Clocalhost\0004\000\000127.0.0.1\000", 24),
        std::string("DH", 2),
        std::string("DMi\000A4146112868\000", 16),
        std::string("Malice@ours.example\000", 20),
        std::string("DRi\000A4146112868\000", 16),
        std::string("Rbob@remote.example\000", 20),
        std::string("DTi\000A4146112868\000", 16),
        std::string("DLi\000A4146112868\000", 16),
        std::string("LSubject\000local\000", 15),
        std::string("DLi\000A4146112868\000", 16),
        std::string("LFrom\000alice@ours.example\000", 25),
        std::string("DLi\000A4146112868\000", 16),
        std::string("LMessage-Id\000<20261205075849.A4146112868@vm>\000", 44),
        std::string("DLi\000A4146112868\000", 16),
        std::string("LDate\000Sat,  5 Dec 2026 07:58:49 +0000 (UTC)\000", 44),
        std::string("DNi\000A4146112868\000", 16),
        std::string("N", 1),
        std::string("DBi\000A4146112868\000", 16),
        std::string("Blocal submission\015\012", 19),
        std::string("DEi\000A4146112868\000", 16),
        std::string("E", 1),
        std::string("Q", 1),
    };
    return packets;
}

// Postfix 3.7.11: swaks from 127.0.0.1, MAIL FROM:<alice@ours.example> to bob@remote.example.
inline const std::vector<std::string>& postfix_smtp_from_loopback() {
    static const std::vector<std::string> packets = {
        std::string("O\000\000\000\006\000\000\001\377\000\037\377\377", 13),
        std::string("DCj\000vm\000{daemon_name}\000vm\000{daemon_addr}\000127.0.0."
                    "1\000v\000Postfix 3.7.11\000_\000unknown [127.0.0.1]\000",
                    87),
        std::string("C[127.0.0.1]\0004\240+127.0.0.1\000", 26),
        std::string("DH", 2),
        std::string("DM", 2),
        std::string("M<alice@ours.example>\000", 22),
        std::string("DR", 2),
        std::string("R<bob@remote.example>\000", 22),
        std::string("DTi\00055A3611285B\000", 16),
        std::string("DLi\00055A3611285B\000", 16),
        std::string("LDate\000Sat, 05 Dec 2026 07:58:49 +0000\000", 38),
        std::string("DLi\00055A3611285B\000", 16),
        std::string("LTo\000bob@remote.example\000", 23),
        std::string("DLi\00055A3611285B\000", 16),
        std::string("LFrom\000alice@ours.example\000", 25),
        std::string("DLi\00055A3611285B\000", 16),
        std::string("LSubject\000test Sat, 05 Dec 2026 07:58:49 +0000\000", 46),
        std::string("DLi\00055A3611285B\000", 16),
        std::string("LMessage-Id\000<20261205075849.010304@vm>\000", 39),
        std::string("DLi\00055A3611285B\000", 16),
        std::string("LX-Mailer\000swaks v20201014.0 jetmore.org/john/code/swaks/\000", 57),
        std::string("DNi\00055A3611285B\000", 16),
        std::string("N", 1),
        std::string("DBi\00055A3611285B\000", 16),
        std::string("BThis is a test mailing\015\012\015\012\015\012", 29),
        std::string("DEi\00055A3611285B\000", 16),
        std::string("E", 1),
        std::string("A", 1),
        std::string("A", 1),
        std::string("Q", 1),
    };
    return packets;
}

// Sendmail 8.17.1.9: sendmail -Ac -t (the MSP, submit.cf) relaying over SMTP from 127.0.0.1.
inline const std::vector<std::string>& sendmail_msp_submission() {
    static const std::vector<std::string> packets = {
        std::string("O\000\000\000\006\000\000\001\377\000\037\377\377", 13),
        std::string("Clocalhost\0004\205\262127.0.0.1\000", 24),
        std::string("DMi\0006B5805Hr014006\000", 19),
        std::string("M<alice@ours.example>\000SIZE=66\000AUTH=alice@ours.example\000", 54),
        std::string("DRi\0006B5805Hr014006\000", 19),
        std::string("R<bob@remote.example>\000", 22),
        std::string(
            "LReceived\000(from root@localhost)\012\011by mta.ours.example (8.17.1.9/8.17.1.9) id "
            "6B5805uh014004;\012\011Sat, 5 Dec 2026 08:00:05 GMT\000",
            122),
        std::string("LDate\000Sat, 5 Dec 2026 08:00:05 GMT\000", 35),
        std::string("LMessage-Id\000<202612050800.6B5805uh014004@mta.ours.example>\000", 59),
        std::string("LTo\000bob@remote.example\000", 23),
        std::string("LFrom\000alice@ours.example\000", 25),
        std::string("LSubject\000msp\000", 13),
        std::string("N", 1),
        std::string("Bmsp\015\012", 6),
        std::string("DEi\0006B5805Hr014006\000", 19),
        std::string("E", 1),
        std::string("Q", 1),
    };
    return packets;
}

// Sendmail 8.17.1.9: sendmail -bs in MTA mode, SMTP on its standard input.
inline const std::vector<std::string>& sendmail_bs_submission() {
    static const std::vector<std::string> packets = {
        std::string("O\000\000\000\006\000\000\001\377\000\037\377\377", 13),
        std::string("Clocalhost\000U", 12),
        std::string("DMi\0006B57xuRO013909\000", 19),
        std::string("M<alice@ours.example>\000", 22),
        std::string("DRi\0006B57xuRO013909\000", 19),
        std::string("R<bob@remote.example>\000", 22),
        std::string("LSubject\000bs\000", 12),
        std::string("N", 1),
        std::string("Bbs\015\012", 5),
        std::string("DEi\0006B57xuRO013909\000", 19),
        std::string("E", 1),
        std::string("Q", 1),
    };
    return packets;
}

// Sendmail 8.17.1.9: swaks from 127.0.0.2, MAIL FROM:<> RCPT TO:<alice@ours.example> (refused; QUIT
// follows).
inline const std::vector<std::string>& sendmail_bounce_from_outside() {
    static const std::vector<std::string> packets = {
        std::string("O\000\000\000\006\000\000\001\377\000\037\377\377", 13),
        std::string("C[127.0.0.2]\0004\264\303127.0.0.2\000", 26),
        std::string("DMi\0006B57xuPv013904\000", 19),
        std::string("M<>\000", 4),
        std::string("DRi\0006B57xuPv013904\000", 19),
        std::string("R<alice@ours.example>\000", 22),
        std::string("Q", 1),
    };
    return packets;
}

}  // namespace backstop::engine_test
