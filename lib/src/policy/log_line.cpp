#include "log_line.hpp"

namespace backstop {

std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += char(c);
        }
    }
    return out;
}

LogLine::LogLine(std::string_view queue_id)
    : line_(queue_id.empty() ? std::string("NOQUEUE") : printable(queue_id)) {
    line_ += ':';
}

LogLine& LogLine::add(std::string_view key, std::string_view value) {
    line_.append(" ").append(key).append("=").append(printable(value));
    return *this;
}

LogLine& LogLine::add_quoted(std::string_view key, std::string_view value) {
    line_.append(" ").append(key).append("=\"");
    for (char c : printable(value)) {
        if (c == '"' || c == '\\') line_.push_back('\\');
        line_.push_back(c);
    }
    line_.push_back('"');
    return *this;
}

LogLine& LogLine::add_list(std::string_view key, const std::vector<std::string>& values) {
    if (values.empty()) return *this;
    std::string joined;
    for (const auto& v : values) joined.append(joined.empty() ? "" : ",").append(v);
    return add(key, joined);
}

}  // namespace backstop
