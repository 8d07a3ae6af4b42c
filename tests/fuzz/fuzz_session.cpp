// libFuzzer: a Session fed a fuzzed sequence of milter events. Each event is one
// byte of kind followed by a NUL-terminated argument; decisions and end-of-message
// actions must always be well formed (no CR/LF in reply text, codes that match).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "backstop/policy/config.hpp"
#include "backstop/policy/policy.hpp"
#include "backstop/policy/session.hpp"
#include "temp_dir.hpp"
#include "test_policy.hpp"

namespace {

std::shared_ptr<const backstop::Policy> policy() {
    static std::shared_ptr<const backstop::Policy> p = [] {
        // Lives for the process, so the key files stay readable; removed at exit.
        static const backstop::testing::TempDir dir("backstop-fuzz");
        backstop::Config c = backstop::testing::base_config(dir);
        c.unsigned_bounce = backstop::Action::tag;
        return backstop::testing::build(c);
    }();
    return p;
}

void check(const backstop::Decision& d) {
    if (d.text.find_first_of("\r\n") != std::string::npos) std::abort();
    if (d.step == backstop::Step::reject && d.code[0] != '5') std::abort();
    if (d.step == backstop::Step::tempfail && d.code[0] != '4') std::abort();
}

// A refusal at RCPT comes with its one log line; nothing else has one.
void check_rcpt(const backstop::Decision& d) {
    check(d);
    const bool refused = d.step == backstop::Step::reject || d.step == backstop::Step::tempfail;
    if (refused == d.log_line.empty()) std::abort();
    if (d.log_line.find_first_of("\r\n") != std::string::npos) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static backstop::FixedClock clock(20779LL * 86400);
    backstop::Session s(policy(), clock);
    std::string_view in(reinterpret_cast<const char*>(data), size);
    while (!in.empty()) {
        char kind = in[0];
        in.remove_prefix(1);
        std::size_t nul = in.find('\0');
        std::string_view arg = in.substr(0, nul);
        in = nul == std::string_view::npos ? std::string_view{} : in.substr(nul + 1);
        switch (kind % 9) {
            case 0:
                check(s.connect("client", arg,
                                arg.empty() ? backstop::ClientKind::local_submission
                                            : backstop::ClientKind::smtp));
                break;
            case 1:
                check(s.mail(arg));
                break;
            case 2:
                check(s.mail(arg, "authuser"));
                break;
            case 3:
                check_rcpt(s.rcpt(arg, "QFUZZ"));
                break;
            case 4: {
                std::size_t colon = arg.find(':');
                check(s.header(arg.substr(0, colon),
                               colon == std::string_view::npos ? "" : arg.substr(colon + 1)));
                break;
            }
            case 5:
                check(s.end_of_headers());
                break;
            case 6:
                check(s.body(arg));
                break;
            case 7: {
                auto eom = s.end_of_message(arg);
                check(eom.decision);
                if (eom.log_line.find_first_of("\r\n") != std::string::npos) std::abort();
                if (eom.new_sender && eom.new_sender->find_first_of("\r\n<>") != std::string::npos)
                    std::abort();
                break;
            }
            default:
                s.abort();
                break;
        }
    }
    return 0;
}
