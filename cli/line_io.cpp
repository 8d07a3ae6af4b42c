#include "line_io.hpp"

#include <iostream>

#include "commands.hpp"

namespace backstop::cli {

namespace {

bool answer(std::string_view input, const std::function<LineAnswer(std::string_view)>& fn) {
    LineAnswer a = fn(input);
    if (a.ok) {
        std::cout << a.text << '\n' << std::flush;
    } else {
        std::cout << '\n' << std::flush;
        std::cerr << input << ": " << a.text << '\n' << std::flush;
    }
    return a.ok;
}

}  // namespace

int for_each_address(const std::vector<std::string>& args,
                     const std::function<LineAnswer(std::string_view)>& fn) {
    bool all_ok = true;
    if (!args.empty()) {
        for (const auto& a : args) all_ok = answer(a, fn) && all_ok;
    } else {
        std::string line;
        while (std::getline(std::cin, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            all_ok = answer(line, fn) && all_ok;
        }
    }
    return all_ok ? kExitOk : kExitFailed;
}

}  // namespace backstop::cli
