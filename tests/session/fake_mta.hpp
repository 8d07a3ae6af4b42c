// A fake MTA for Session tests: runs SMTP transactions as the milter engine reports
// them and records every decision, with key files written to a private temp dir.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "backstop/config.hpp"
#include "backstop/policy.hpp"
#include "backstop/session.hpp"

namespace backstop::testing {

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/backstop-session-XXXXXX";
        path_ = mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
    std::string write(const std::string& name, const std::string& content,
                      mode_t mode = 0600) const {
        std::string p = path_ + "/" + name;
        std::ofstream(p) << content;
        chmod(p.c_str(), mode);
        return p;
    }

  private:
    std::string path_;
};

// Config for ours.example with SRS at fwd.ours.example and BATV; tests adjust it.
inline Config base_config(const TempDir& dir) {
    Config c;
    c.local_domains = {"ours.example"};
    c.internal_networks = "192.0.2.0/24";
    c.srs_enable = true;
    c.srs_domain = "fwd.ours.example";
    c.srs_secrets = dir.write("srs.secrets", "tops3cr3t\n");
    c.batv_enable = true;
    c.batv_keys = dir.write("batv.keys", "1 secret\n");
    return c;
}

inline std::shared_ptr<const Policy> build(const Config& c) {
    auto p = Policy::build(c);
    if (!p) throw std::runtime_error(p.error().message);
    return *p;
}

struct Transaction {
    std::string client = "198.51.100.7";  // external by default
    std::string auth;
    std::string sender;
    std::vector<std::string> recipients;
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
    for (const auto& r : t.recipients) {
        o.rcpts.push_back(s.rcpt(r));
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

inline Outcome run_once(std::shared_ptr<const Policy> p, const Clock& clock, const Transaction& t) {
    Session s(std::move(p), clock);
    s.connect("client.example", t.client);
    return run(s, t);
}

}  // namespace backstop::testing
