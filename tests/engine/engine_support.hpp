// Helpers for the engine tests: the temp dir and test Config shared with the session
// tests (tests/support), the MTA's side of the milter protocol in bytes, a decoder
// for what the filter writes, and a stderr capture for the log lines.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backstop/base/clock.hpp"
#include "backstop/policy/config.hpp"
#include "backstop/policy/policy.hpp"
#include "read_file.hpp"
#include "temp_dir.hpp"
#include "test_policy.hpp"

namespace backstop::engine_test {

// The session tests' temp dir, starting config and fixed time (tests/support).
using backstop::testing::base_config;
using backstop::testing::build;
using backstop::testing::kNow;
using backstop::testing::TempDir;

// ---- The MTA's side in bytes ----

inline std::string u32(std::uint32_t v) {
    return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

inline std::uint32_t get_u32(std::string_view s, std::size_t at) {
    auto b = [&](std::size_t i) { return std::uint32_t(static_cast<unsigned char>(s[at + i])); };
    return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

// One whole packet: length, command, data.
inline std::string packet(char command, std::string_view data = {}) {
    return u32(std::uint32_t(data.size() + 1)) + command + std::string(data);
}

// Strings, each NUL-terminated (MAIL, RCPT, HELO, HEADER arguments).
inline std::string strings(std::initializer_list<std::string_view> list) {
    std::string out;
    for (auto s : list) out.append(s).push_back('\0');
    return out;
}

inline std::string offer_data(std::uint32_t version, std::uint32_t actions, std::uint32_t steps) {
    return u32(version) + u32(actions) + u32(steps);
}

inline std::string connect_data(std::string_view host, char family, std::uint16_t port,
                                std::string_view address) {
    std::string d = strings({host});
    d.push_back(family);
    if (family != 'U') {
        d.push_back(char(port >> 8));
        d.push_back(char(port & 0xff));
        d.append(address).push_back('\0');
    }
    return d;
}

// SMFIC_MACRO: the command the macros belong to, then name, value, ...
inline std::string macro_data(char command,
                              const std::vector<std::pair<std::string, std::string>>& pairs) {
    std::string d(1, command);
    for (const auto& [n, v] : pairs) d.append(n).append(1, '\0').append(v).append(1, '\0');
    return d;
}

// What the MTA offers: Postfix offers every action and step flag.
inline constexpr std::uint32_t kAllActions = 0x1ff;
inline constexpr std::uint32_t kAllSteps = 0x1fffff;
// Every "do not send" flag and SKIP, no NR_* flag (an MTA that wants every reply).
inline constexpr std::uint32_t kStepsNoNr =
    0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 | 0x400;

// ---- What the filter writes ----

struct Reply {
    char code = 0;
    std::string data;
};

inline bool known_reply_code(char c) {
    return std::string_view("+-acdehmOrty").find(c) != std::string_view::npos;
}

// Decodes a byte stream of reply packets; a malformed stream fails the test.
inline std::vector<Reply> decode(std::string_view out) {
    std::vector<Reply> replies;
    while (!out.empty()) {
        if (out.size() < 5) {
            ADD_FAILURE() << "truncated reply packet (" << out.size() << " bytes left)";
            break;
        }
        const std::uint32_t len = get_u32(out, 0);
        if (len == 0 || out.size() - 4 < len) {
            ADD_FAILURE() << "bad reply packet length " << len;
            break;
        }
        Reply r{out[4], std::string(out.substr(5, len - 1))};
        EXPECT_TRUE(known_reply_code(r.code)) << "unknown reply code " << int(r.code);
        replies.push_back(std::move(r));
        out.remove_prefix(4 + len);
    }
    return replies;
}

// The reply codes in order, e.g. "e-+c".
inline std::string codes(const std::vector<Reply>& replies) {
    std::string s;
    for (const auto& r : replies) s.push_back(r.code);
    return s;
}

// The NUL-terminated strings of a reply's data.
inline std::vector<std::string> split(std::string_view data) {
    std::vector<std::string> out;
    while (!data.empty()) {
        std::size_t nul = data.find('\0');
        out.emplace_back(data.substr(0, nul));
        if (nul == std::string_view::npos) break;
        data.remove_prefix(nul + 1);
    }
    return out;
}

// Redirects stderr (where the daemon's log goes in the foreground) to a file for
// the lifetime of the object.
class StderrCapture {
  public:
    explicit StderrCapture(const TempDir& dir) : path_(dir.file("stderr.log")) {
        std::fflush(stderr);
        saved_ = dup(2);
        int fd = open(path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
        if (saved_ < 0 || fd < 0) throw std::runtime_error("cannot capture stderr");
        dup2(fd, 2);
        close(fd);
    }
    ~StderrCapture() {
        std::fflush(stderr);
        dup2(saved_, 2);
        close(saved_);
    }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;

    std::string text() const {
        std::fflush(stderr);
        return testing::read_file(path_);
    }

  private:
    std::string path_;
    int saved_ = -1;
};

}  // namespace backstop::engine_test
