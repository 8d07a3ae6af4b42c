// libFuzzer: the milter protocol from the MTA's side. The input bytes, split into a
// few appends, go through a PacketReader and every packet to a Connection with a
// real Policy (SRS and BATV on). Invariants: no crash; everything written parses as
// reply packets (length >= 1, a known reply code, well-formed data); each command gets
// exactly one reply (modifications before it at end of message), none for macros,
// abort, quit and the no-reply steps agreed, and at most one when it ends the
// connection; every SMTP reply is one Postfix takes as given (4xx or 5xx with an
// enhanced status of the same class); nothing more is written once the connection is
// finished.
//
// The first input byte steers the run: bit 0 starts the stream with a valid
// negotiation (so the fuzzer gets past it half of the time), bit 1 offers no NR_*
// flags, bit 2 no SETSYMLIST, bit 3 picks the second policy (tag/discard actions,
// small storm and replay limits), bits 4-7 seed where the stream is cut.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "backstop/base/clock.hpp"
#include "backstop/base/metrics.hpp"
#include "backstop/policy/config.hpp"
#include "backstop/policy/policy.hpp"
#include "backstop/state/store.hpp"
#include "connection.hpp"
#include "log.hpp"
#include "policy_holder.hpp"
#include "protocol.hpp"
#include "stream_pieces.hpp"
#include "temp_dir.hpp"
#include "test_policy.hpp"

namespace {

namespace proto = backstop::milter::proto;

const backstop::testing::PolicyPair& env() {
    static const auto e = [] {
        // The log goes to stderr, which libFuzzer needs for itself: keep it quiet
        // (below the lowest level) unless asked for.
        if (!std::getenv("BACKSTOP_FUZZ_LOG")) {
            backstop::milter::log_set_level(static_cast<backstop::milter::LogLevel>(-1));
        }
        return backstop::testing::fuzz_policies("backstop-fuzz-milter", [](backstop::Config& c) {
            c.unsigned_bounce = backstop::Action::tag;
            c.bad_signature = backstop::Action::discard;
            c.storm_limit = "2/10m";
            c.storm_action = backstop::Action::discard;
            c.replay_limit = 1;
        });
    }();
    return e;
}

std::uint32_t get_u32(std::string_view s, std::size_t at) {
    auto b = [&](std::size_t i) { return std::uint32_t(static_cast<unsigned char>(s[at + i])); };
    return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

std::string u32(std::uint32_t v) {
    return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

bool digits(std::string_view s, std::size_t from, std::size_t to) {
    if (from >= to || to > s.size()) return false;
    for (std::size_t i = from; i < to; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
    }
    return true;
}

// "CDD C.D{1,3}.D{1,3} " at the front, C the same class (4 or 5) twice.
bool enhanced_status_matches(std::string_view r) {
    if (r.size() < 10 || !digits(r, 1, 3) || r[3] != ' ' || r[4] != r[0] || r[5] != '.')
        return false;
    const std::size_t dot = r.find('.', 6), end = r.find_first_of(std::string_view(" \0", 2), 6);
    return dot != std::string_view::npos && end != std::string_view::npos && dot < end &&
           dot - 6 <= 3 && end - dot - 1 <= 3 && digits(r, 6, dot) && digits(r, dot + 1, end);
}

// One reply packet's data, by its code.
void check_reply(char code, std::string_view data) {
    auto one_string = [&] {
        // A single NUL-terminated string without CR or LF.
        if (data.empty() || data.back() != '\0') std::abort();
        if (data.find('\0') != data.size() - 1) std::abort();
        if (data.find_first_of("\r\n") != std::string_view::npos) std::abort();
    };
    switch (code) {
        case proto::reply::accept:
        case proto::reply::continue_:
        case proto::reply::discard:
        case proto::reply::reject:
        case proto::reply::tempfail:
            if (!data.empty()) std::abort();
            return;
        case proto::reply::reply_code: {
            one_string();
            // "4xx" or "5xx", then the text with every '%' doubled.
            if (data.size() < 4 || (data[0] != '4' && data[0] != '5')) std::abort();
            // Postfix replaces a reply whose enhanced status is missing or of another
            // class with a generic one: "4xx 4.d.d " or "5xx 5.d.d ".
            if (!enhanced_status_matches(data)) std::abort();
            std::size_t run = 0;
            for (char ch : data) {
                if (ch == '%') {
                    ++run;
                } else {
                    if (run % 2) std::abort();
                    run = 0;
                }
            }
            return;
        }
        case proto::reply::change_from:
        case proto::reply::add_rcpt:
            one_string();
            if (data.front() != '<' || data[data.size() - 2] != '>') std::abort();
            return;
        case proto::reply::del_rcpt:
            // The recipient exactly as the MTA gave it, whatever its bytes.
            if (data.empty() || data.back() != '\0') std::abort();
            if (data.find('\0') != data.size() - 1) std::abort();
            return;
        case proto::reply::add_header: {
            // name\0value\0, both on one line
            if (data.find_first_of("\r\n") != std::string_view::npos) std::abort();
            std::size_t nul = data.find('\0');
            if (nul == 0 || nul == std::string_view::npos || data.back() != '\0') std::abort();
            if (data.find('\0', nul + 1) != data.size() - 1) std::abort();
            return;
        }
        case proto::reply::change_header: {
            // index, name\0, empty value\0 (we only remove headers)
            if (data.size() < 6 || get_u32(data, 0) == 0) std::abort();
            std::string_view rest = data.substr(4);
            std::size_t nul = rest.find('\0');
            if (nul == 0 || nul == std::string_view::npos ||
                rest.substr(nul) != std::string_view("\0\0", 2))
                std::abort();
            return;
        }
        case proto::reply::negotiate:
            if (data.size() < 12) std::abort();
            if (get_u32(data, 0) < 2 || get_u32(data, 0) > proto::kVersion) std::abort();
            return;
        default:
            std::abort();  // a code we never send
    }
}

bool is_final(char code) {
    switch (code) {
        case proto::reply::accept:
        case proto::reply::continue_:
        case proto::reply::discard:
        case proto::reply::reject:
        case proto::reply::tempfail:
        case proto::reply::reply_code:
        case proto::reply::negotiate:
            return true;
        default:
            return false;
    }
}

// The agreed no-reply step for a command, 0 when it always gets a reply.
std::uint32_t no_reply_step(char command) {
    switch (command) {
        case proto::cmd::connect:
            return proto::step::no_reply_connect;
        case proto::cmd::header:
            return proto::step::no_reply_header;
        case proto::cmd::end_of_headers:
            return proto::step::no_reply_eoh;
        case proto::cmd::body:
            return proto::step::no_reply_body;
        default:
            return 0;
    }
}

// What one command wrote (whole packets, checked by check_output): how many replies it
// may and must get. steps: the no-reply steps agreed, updated by a negotiation reply.
void check_replies(char command, std::string_view written, bool finished, std::uint32_t& steps) {
    std::size_t finals = 0, modifications_after = 0;
    char last = 0;
    while (written.size() >= 5) {
        const std::uint32_t len = get_u32(written, 0);
        if (len == 0 || written.size() - 4 < len) return;  // check_output reports it
        const char code = written[4];
        if (code == proto::reply::negotiate && len >= 13) steps = get_u32(written.substr(5), 8);
        if (is_final(code)) {
            ++finals;
        } else if (finals > 0) {
            ++modifications_after;
        }
        if (!is_final(code) && command != proto::cmd::end_of_message) std::abort();
        last = code;
        written.remove_prefix(4 + std::size_t(len));
    }
    if (modifications_after > 0 || finals > 1) std::abort();
    const bool silent = command == proto::cmd::macro || command == proto::cmd::abort ||
                        command == proto::cmd::quit || command == proto::cmd::quit_new_connection ||
                        (steps & no_reply_step(command)) != 0;
    if (finished) return;  // a command that ends the connection may go unanswered
    if (silent ? finals != 0 : finals != 1) std::abort();
    if (command == proto::cmd::negotiate && last != proto::reply::negotiate) std::abort();
}

// Everything written must be whole, well-formed packets.
void check_output(std::string_view out) {
    while (!out.empty()) {
        if (out.size() < 5) std::abort();
        const std::uint32_t len = get_u32(out, 0);
        if (len == 0 || out.size() - 4 < len) std::abort();
        check_reply(out[4], out.substr(5, len - 1));
        out.remove_prefix(4 + std::size_t(len));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto& e = env();
    static backstop::FixedClock clock(20779LL * 86400);
    static backstop::Metrics metrics;
    const std::uint8_t control = data[0];
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

    // A fresh store per input, so that runs do not depend on each other.
    backstop::milter::PolicyHolder holder;
    holder.set(control & 8 ? e.varied : e.base);
    auto store = backstop::open_state("memory");
    if (!store) std::abort();
    holder.set_state(*store, "memory");

    std::string stream;
    if (control & 1) {
        const std::uint32_t steps = control & 2 ? 0x7ff : 0x1fffff;
        const std::uint32_t actions = control & 4 ? 0xff : 0x1ff;
        const std::string offer = u32(6) + u32(actions) + u32(steps);
        stream = u32(std::uint32_t(offer.size() + 1)) + "O" + offer;
    }
    stream.append(input);

    backstop::milter::Connection conn(holder, metrics, clock);
    proto::PacketReader reader;
    std::string out;
    std::uint32_t steps = 0;  // the no-reply steps agreed
    backstop::testing::in_pieces(stream, control, [&](std::string_view piece) {
        reader.append(piece);
        while (!conn.finished()) {
            auto p = reader.next();
            if (!p) break;
            (void)conn.may_block(p->command);
            const std::size_t before = out.size();
            conn.handle(*p, out);
            check_replies(p->command, std::string_view(out).substr(before), conn.finished(), steps);
        }
        return reader.error().empty();  // the server closes the connection on an error
    });
    // Once finished, nothing more is written, whatever comes.
    if (conn.finished()) {
        const std::size_t before = out.size();
        for (char c : std::string_view("OCMREDKQLNBTAHU")) {
            conn.handle(proto::Packet{c, std::string_view("x\0y\0", 4)}, out);
        }
        if (out.size() != before) std::abort();
    }
    check_output(out);
    return 0;
}
