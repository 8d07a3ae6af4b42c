#include "line_io.hpp"

#include <iostream>

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
        while (std::getline(std::cin, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            all_ok = answer(line, fn, std::cin.rdbuf()->in_avail() > 0) && all_ok;
        }
    }
    std::cout.flush();
    return all_ok ? kExitOk : kExitFailed;
}

}  // namespace backstop::cli
