// The hand-written bounces of tests/fixtures/bounce, by file name.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "read_file.hpp"

inline std::string fixture(const std::string& name) {
    std::string text =
        backstop::testing::read_file(std::string(BACKSTOP_FIXTURES) + "/bounce/" + name);
    EXPECT_FALSE(text.empty()) << "no fixture " << name;
    return text;
}
