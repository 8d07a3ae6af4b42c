#include "replies.hpp"

#include <utility>

#include "backstop/policy/network.hpp"

namespace backstop::milter {

std::string reply_text(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (out.size() >= 970) break;
        if (c == '\r' || c == '\n' || c == '\0') c = ' ';
        out.push_back(c);
        if (c == '%') out.push_back('%');
    }
    return out;
}

//  - Postfix's sendmail(1), through non_smtpd_milters: cleanup pretends "localhost"
//    at 127.0.0.1, family '4', with port 0, which no TCP client can have;
//  - Sendmail's sendmail -bs in MTA mode: "localhost", family 'U' (no address);
//  - any MTA's unix-socket client ('L'): a process on this host.
// Sendmail's usual sendmail(1) path, its MSP relaying over SMTP from 127.0.0.1 with a
// real port, is not told apart here: it needs loopback in internal-networks.
ClientKind client_kind(char family, std::uint16_t port, std::string_view address,
                       std::string_view hostname) {
    if (family == 'L') return ClientKind::local_submission;
    if (family == 'U') {
        return hostname == "localhost" ? ClientKind::local_submission : ClientKind::smtp;
    }
    auto ip = IpAddress::parse(address);
    if (port == 0 && ip && ip->is_loopback()) return ClientKind::local_submission;
    return ClientKind::smtp;
}

std::uint32_t Modification::action() const {
    switch (kind) {
        case Kind::change_from:
            return 0x40;  // SMFIF_CHGFROM
        case Kind::remove_recipient:
            return 0x08;  // SMFIF_DELRCPT
        case Kind::add_recipient:
            return 0x04;  // SMFIF_ADDRCPT
        case Kind::add_header:
            return 0x01;  // SMFIF_ADDHDRS
        case Kind::remove_header:
            return 0x10;  // SMFIF_CHGHDRS
    }
    return ~std::uint32_t(0);  // never allowed
}

std::string Modification::describe() const {
    switch (kind) {
        case Kind::change_from:
            return "change of sender to " + name;
        case Kind::remove_recipient:
            return "removing recipient " + name;
        case Kind::add_recipient:
            return "adding recipient " + name;
        case Kind::add_header:
            return "adding header " + name;
        case Kind::remove_header:
            return "removing header " + name;
    }
    return {};
}

std::vector<Modification> modifications(const EndOfMessage& eom) {
    std::vector<Modification> out;
    if (eom.decision.step != Step::proceed && eom.decision.step != Step::accept) return out;
    using Kind = Modification::Kind;
    if (eom.new_sender) out.push_back({Kind::change_from, "<" + *eom.new_sender + ">", {}, 0});
    for (const auto& r : eom.remove_recipients) out.push_back({Kind::remove_recipient, r, {}, 0});
    for (const auto& r : eom.add_recipients)
        out.push_back({Kind::add_recipient, "<" + r + ">", {}, 0});
    for (const auto& h : eom.header_edits) {
        if (h.kind == HeaderEdit::Kind::add) {
            out.push_back({Kind::add_header, h.name, h.value, 0});
        } else {
            out.push_back({Kind::remove_header, h.name, {}, int(h.index)});
        }
    }
    return out;
}

Decision tempfail_451(std::string xcode, std::string text) {
    Decision d;
    d.step = Step::tempfail;
    d.code = "451";
    d.xcode = std::move(xcode);
    d.text = std::move(text);
    return d;
}

Decision changes_not_allowed() {
    return tempfail_451("4.3.0", "backstop: the MTA does not allow the changes this message needs");
}

Decision internal_error_reply() {
    return tempfail_451("4.3.0", "backstop: temporary internal error, try again later");
}

}  // namespace backstop::milter
