// The milter's log lines: the queue ID first, then key=value fields, so that
// `grep QUEUEID` finds a message and `grep check=storm` a kind of decision. A value
// that may hold blanks is quoted; no control byte reaches a line raw.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace backstop {

// Control bytes as \xNN, everything else as it is.
std::string printable(std::string_view s);

class LogLine {
  public:
    // An empty queue ID is written as NOQUEUE, as Postfix does.
    explicit LogLine(std::string_view queue_id);

    // key=value; the value must hold no blank (a token, an address in <>).
    LogLine& add(std::string_view key, std::string_view value);
    // key="value", with " and \ escaped: for free text.
    LogLine& add_quoted(std::string_view key, std::string_view value);
    // key=a,b,c; nothing when the list is empty.
    LogLine& add_list(std::string_view key, const std::vector<std::string>& values);

    const std::string& str() const { return line_; }

  private:
    std::string line_;
};

}  // namespace backstop
