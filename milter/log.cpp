#include "log.hpp"

#include <syslog.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

namespace backstop::milter {

namespace {

std::atomic<bool> g_stderr{true};
std::atomic<int> g_level{int(LogLevel::info)};
std::mutex g_stderr_mutex;

int priority(LogLevel l) {
    switch (l) {
        case LogLevel::error:
            return LOG_ERR;
        case LogLevel::warning:
            return LOG_WARNING;
        case LogLevel::info:
            return LOG_INFO;
        case LogLevel::debug:
            return LOG_DEBUG;
    }
    return LOG_INFO;
}

}  // namespace

void log_open(bool to_stderr, LogLevel level) {
    g_stderr = to_stderr;
    g_level = int(level);
    if (!to_stderr) openlog("backstop-milter", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_level(LogLevel level) {
    g_level = int(level);
}

LogLevel log_level_from(std::string_view name) {
    if (name == "error") return LogLevel::error;
    if (name == "warning") return LogLevel::warning;
    if (name == "debug") return LogLevel::debug;
    return LogLevel::info;
}

bool log_enabled(LogLevel level) {
    return int(level) <= g_level;
}

void log(LogLevel level, std::string_view line) {
    if (int(level) > g_level) return;
    // One event, one line: a stray CR/LF must not forge a second log entry, and
    // no other control byte (a terminal escape in an address) reaches the log raw.
    std::string s;
    s.reserve(line.size());
    for (unsigned char c : line) {
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            s += "\\x";
            s += kHex[c >> 4];
            s += kHex[c & 15];
        } else {
            s += char(c);
        }
    }
    if (g_stderr) {
        std::lock_guard<std::mutex> lock(g_stderr_mutex);
        std::fprintf(stderr, "backstop-milter: %s\n", s.c_str());
        std::fflush(stderr);
    } else {
        syslog(priority(level), "%s", s.c_str());
    }
}

}  // namespace backstop::milter
