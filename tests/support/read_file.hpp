// A whole file as bytes, for tests that read fixtures, corpus messages or logs.
// A file that cannot be opened reads as empty: the caller's assertion on the text
// then says what was missing.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace backstop::testing {

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace backstop::testing
