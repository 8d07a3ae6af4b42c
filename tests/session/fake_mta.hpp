// A fake MTA for Session tests: runs SMTP transactions as the milter engine reports
// them and records every decision. The test config and its key files come from
// tests/support (temp_dir.hpp, test_policy.hpp).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backstop/base/clock.hpp"
#include "backstop/policy/policy.hpp"
#include "backstop/policy/session.hpp"
#include "temp_dir.hpp"
#include "test_policy.hpp"

namespace backstop::testing {

struct Transaction {
    std::string client = "198.51.100.7";  // external by default
    std::string auth;
    std::string sender;
    std::vector<std::string> recipients;
    // Per recipient, where the MTA routed it ({rcpt_host}, {rcpt_addr}); none if shorter.
    std::vector<std::pair<std::string, std::string>> routes;
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Subject", "hello"}, {"Message-ID", "<m1@client.example>"}};
    std::string body = "Hello.\r\n";
};

struct Outcome {
    Decision mail;
    std::vector<Decision> rcpts;
    bool reached_eom = false;
    EndOfMessage eom;
};

// Runs one transaction; stops, like an MTA, when every recipient was refused.
inline Outcome run(Session& s, const Transaction& t) {
    Outcome o;
    o.mail = s.mail(t.sender, t.auth);
    bool any = false;
    for (std::size_t i = 0; i < t.recipients.size(); ++i) {
        MtaRoute route;
        if (i < t.routes.size()) route = {"", t.routes[i].first, t.routes[i].second};
        o.rcpts.push_back(s.rcpt(t.recipients[i], {}, route));
        any = any || o.rcpts.back().step == Step::proceed;
    }
    if (!any) {
        s.abort();
        return o;
    }
    for (const auto& [n, v] : t.headers) s.header(n, v);
    s.end_of_headers();
    s.body(t.body);
    o.reached_eom = true;
    o.eom = s.end_of_message("QID1");
    return o;
}

// Feeds a whole message (header and body, CRLF lines) to a session as the MTA does,
// and ends it.
inline EndOfMessage feed_message(Session& s, const std::string& msg,
                                 std::string_view queue_id = "QID9") {
    std::size_t split = msg.find("\r\n\r\n");
    std::string head = msg.substr(0, split + 2);
    for (std::size_t pos = 0; pos < head.size();) {
        std::size_t eol = head.find("\r\n", pos);
        std::string line = head.substr(pos, eol - pos);
        std::size_t colon = line.find(':');
        s.header(line.substr(0, colon), line.substr(colon + 2));
        pos = eol + 2;
    }
    s.end_of_headers();
    s.body(msg.substr(split + 4));
    return s.end_of_message(queue_id);
}

inline Outcome run_once(std::shared_ptr<const Policy> p, const Clock& clock, const Transaction& t) {
    Session s(std::move(p), clock);
    s.connect("client.example", t.client);
    return run(s, t);
}

}  // namespace backstop::testing
