#include "backstop/base/ascii.hpp"

#include <gtest/gtest.h>

using namespace backstop;

TEST(Ascii, CaseFolding) {
    // Only ASCII letters fold: UTF-8 bytes are left as they are.
    EXPECT_EQ(ascii_lower("MiXeD.ÄB"), "mixed.Äb");
    EXPECT_EQ(ascii_lower('Q'), 'q');
    EXPECT_EQ(ascii_lower('@'), '@');
    EXPECT_EQ(ascii_lower('\xC4'), '\xC4');
    EXPECT_TRUE(iequals("SRS0", "srs0"));
    EXPECT_FALSE(iequals("SRS0", "srs1"));
    EXPECT_FALSE(iequals("SRS0", "srs0="));
    EXPECT_TRUE(istarts_with("PRVS=123", "prvs="));
    EXPECT_FALSE(istarts_with("PRV", "prvs="));
}
