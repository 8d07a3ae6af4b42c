// The address loop every address subcommand shares: arguments, or one address per
// line on stdin answered one line per input, flushed, so a script can keep it open.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace backstop::cli {

struct LineAnswer {
    bool ok;
    std::string text;  // stdout line when ok, reason for stderr when not
};

// Runs fn over each input; prints "text" on stdout or "input: text" on stderr.
// On failure an empty line also goes to stdout so the answers stay in step with
// the input lines. Returns kExitOk or kExitFailed.
int for_each_address(const std::vector<std::string>& args,
                     const std::function<LineAnswer(std::string_view)>& fn);

}  // namespace backstop::cli
