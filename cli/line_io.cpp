#include "line_io.hpp"

#include <iostream>
#include <limits>

#include "commands.hpp"

namespace backstop::cli {

namespace {

// Answers one input. Flushes only when no further input is already buffered: a
// co-process waiting for its answer gets it at once, a batch is not slowed by a
// write(2) per line.
bool answer(std::string_view input, const std::function<LineAnswer(std::string_view)>& fn,
            bool more_buffered) {
    LineAnswer a = fn(input);
    if (a.ok) {
        std::cout << a.text << '\n';
    } else {
        std::cout << '\n';
        std::cerr << input << ": " << a.text << '\n';
    }
    if (!more_buffered) std::cout.flush();
    return a.ok;
}

enum class Line { ok, too_long, end };

// One input line of at most kMaxLine bytes (no address comes near it). A longer one
// is read to its end but not kept: a runaway producer cannot make us hold it whole.
constexpr std::streamsize kMaxLine = 8192;
Line next_line(std::istream& in, std::string& line) {
    char buf[kMaxLine + 1];
    in.getline(buf, sizeof buf);
    std::streamsize n = in.gcount();  // the newline included when there was one
    if (in.bad()) return Line::end;
    if (in.eof()) {
        if (n == 0) return Line::end;
        line.assign(buf, static_cast<std::size_t>(n));  // a last line without newline
        return Line::ok;
    }
    if (in.fail()) {
        in.clear();
        in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
        return Line::too_long;
    }
    line.assign(buf, static_cast<std::size_t>(n - 1));
    return Line::ok;
}

}  // namespace

int for_each_address(const std::vector<std::string>& args,
                     const std::function<LineAnswer(std::string_view)>& fn) {
    bool all_ok = true;
    if (!args.empty()) {
        for (const auto& a : args) all_ok = answer(a, fn, false) && all_ok;
    } else {
        // Our own buffering instead of stdio's character-at-a-time sync.
        std::ios::sync_with_stdio(false);
        std::cin.tie(nullptr);
        std::string line;
        for (Line got; (got = next_line(std::cin, line)) != Line::end;) {
            if (got == Line::too_long) {
                std::cout << '\n';
                std::cerr << "input line longer than " << kMaxLine << " bytes: not read\n";
                all_ok = false;
                continue;
            }
            if (!line.empty() && line.back() == '\r') line.pop_back();
            all_ok = answer(line, fn, std::cin.rdbuf()->in_avail() > 0) && all_ok;
        }
    }
    std::cout.flush();
    return all_ok ? kExitOk : kExitFailed;
}

}  // namespace backstop::cli
