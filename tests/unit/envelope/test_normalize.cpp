#include "backstop/envelope/normalize.hpp"

#include <gtest/gtest.h>

using namespace backstop;

TEST(Normalize, Batv) {
    EXPECT_EQ(normalize_address("prvs=1786c06615=user@Example.COM"), "user@example.com");
    EXPECT_EQ(normalize_address("PRVS=1786C06615=user@example.com"), "user@example.com");
    EXPECT_EQ(normalize_address("prvs=user=1786c06615@example.com"), "user@example.com");
    EXPECT_EQ(normalize_address("user+prvs=1786c06615@example.com"), "user@example.com");
    EXPECT_EQ(normalize_address("btv1==0e6a8c2b8d6==user@example.com"), "user@example.com");
    EXPECT_EQ(normalize_address("msprvs1=17827b6ypcbdm=bounces-123@example.com"),
              "bounces-123@example.com");
}

TEST(Normalize, SameSenderEveryDay) {
    EXPECT_EQ(normalize_address("prvs=1786c06615=user@example.com"),
              normalize_address("prvs=07934312aa=user@example.com"));
}

TEST(Normalize, Srs) {
    EXPECT_EQ(normalize_address("SRS0=vmyz=2W=otherdomain.com=test@example.com"),
              "test@otherdomain.com");
    EXPECT_EQ(
        normalize_address("SRS1=JIBX=thirddomain.com==vmyz=2W=other.example=test@example.com"),
        "test@other.example");
    EXPECT_EQ(normalize_address("<SRS0=abcd=2W=Other.Example=prvs=1786c06615=user@relay.example>"),
              "user@other.example");
}

TEST(Normalize, LeavesOthersAlone) {
    EXPECT_EQ(normalize_address("user+tag@example.com"), "user+tag@example.com");
    EXPECT_EQ(normalize_address("prvs=notatag=user@example.com"), "prvs=notatag=user@example.com");
    EXPECT_EQ(normalize_address("<>"), "<>");
    EXPECT_EQ(normalize_address("garbage"), "garbage");
}
