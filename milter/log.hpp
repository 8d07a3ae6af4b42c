// Logging for the daemon: syslog (facility mail), or stderr in the foreground.
#pragma once

#include <string_view>

namespace backstop::milter {

enum class LogLevel { error = 0, warning = 1, info = 2, debug = 3 };

void log_open(bool to_stderr, LogLevel level);
void log_set_level(LogLevel level);
LogLevel log_level_from(std::string_view name);
void log(LogLevel level, std::string_view line);
// Whether a line at this level would be written: skip building one that would not.
bool log_enabled(LogLevel level);

}  // namespace backstop::milter
