#include "backstop/envelope/address.hpp"

#include <gtest/gtest.h>

using namespace backstop;

namespace {

Address ok(std::string_view s) {
    auto r = parse_address(s);
    EXPECT_TRUE(r.ok()) << s << ": " << (r ? "" : r.error().message);
    return r ? *r : Address{};
}

AddressErrc bad(std::string_view s) {
    auto r = parse_address(s);
    EXPECT_FALSE(r.ok()) << s << " parsed as " << (r ? r->str() : "");
    return r ? AddressErrc::empty : r.error().code;
}

}  // namespace

TEST(Address, NullPath) {
    EXPECT_TRUE(ok("<>").is_null());
    EXPECT_EQ(ok("<>").path(), "<>");
    EXPECT_TRUE(ok(" <> ").is_null());
}

TEST(Address, BracketedAndBare) {
    auto a = ok("<Alice@Example.COM>");
    EXPECT_EQ(a.local, "Alice");
    EXPECT_EQ(a.domain, "Example.COM");  // case kept as given
    EXPECT_EQ(ok("bob@example.org").str(), "bob@example.org");
}

TEST(Address, SplitsOnLastAt) {
    auto a = ok("\"a@b\"@example.org");
    EXPECT_EQ(a.local, "a@b");
    EXPECT_EQ(a.domain, "example.org");
    EXPECT_EQ(a.str(), "\"a@b\"@example.org");
}

TEST(Address, QuotedLocalParts) {
    auto a = ok("<\"john smith\"@example.org>");
    EXPECT_EQ(a.local, "john smith");
    EXPECT_EQ(a.str(), "\"john smith\"@example.org");
    EXPECT_EQ(ok("\"a\\\"b\"@x.example").local, "a\"b");
    EXPECT_EQ(ok("\"plain\"@x.example").str(), "plain@x.example");
    EXPECT_EQ(bad("\"open@x.example"), AddressErrc::bad_quoting);
    EXPECT_EQ(bad("\"a\"b@x.example"), AddressErrc::bad_quoting);
}

TEST(Address, SourceRoutesStripped) {
    auto a = ok("<@a.example,@b.example:user@d.example>");
    EXPECT_EQ(a.str(), "user@d.example");
    EXPECT_EQ(bad("<@a.example user@d.example>"), AddressErrc::bad_route);
    EXPECT_EQ(bad("<@:user@d.example>"), AddressErrc::bad_route);
}

TEST(Address, Utf8PassesThrough) {
    auto a = ok("<jürgen@bücher.example>");
    EXPECT_EQ(a.local, "jürgen");
    EXPECT_EQ(a.domain, "bücher.example");
}

TEST(Address, Postmaster) {
    auto a = ok("<Postmaster>");
    EXPECT_EQ(a.local, "Postmaster");
    EXPECT_TRUE(a.domain.empty());
    EXPECT_FALSE(a.is_null());
}

TEST(Address, Errors) {
    EXPECT_EQ(bad(""), AddressErrc::empty);
    EXPECT_EQ(bad("<user@example.org"), AddressErrc::unbalanced);
    EXPECT_EQ(bad("user@example.org>"), AddressErrc::unbalanced);
    EXPECT_EQ(bad("<a<b@example.org>"), AddressErrc::unbalanced);
    EXPECT_EQ(bad("user"), AddressErrc::no_domain);
    EXPECT_EQ(bad("@example.org"), AddressErrc::bad_route);
    EXPECT_EQ(bad("<\"\"@example.org>"), AddressErrc::empty_local);
    EXPECT_EQ(bad("us er@example.org"), AddressErrc::bad_local);
    EXPECT_EQ(bad("a,b@example.org"), AddressErrc::bad_local);
    EXPECT_EQ(bad("user@"), AddressErrc::bad_domain);
    EXPECT_EQ(bad("user@exa mple.org"), AddressErrc::bad_domain);
    EXPECT_EQ(bad("user@example..org"), AddressErrc::bad_domain);
    EXPECT_EQ(bad("user@example.org."), AddressErrc::bad_domain);
    EXPECT_EQ(bad(std::string("us\0er@example.org", 17)), AddressErrc::control_char);
    EXPECT_EQ(bad("user@example.org\r\nRCPT TO:<x@y>"), AddressErrc::control_char);
}

TEST(Address, ErrorsHaveMessages) {
    auto r = parse_address("user@exa mple.org");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("domain"), std::string::npos);
}

TEST(Address, AddressLiterals) {
    EXPECT_EQ(ok("user@[192.0.2.1]").domain, "[192.0.2.1]");
    EXPECT_EQ(ok("user@[IPv6:2001:db8::1]").domain, "[IPv6:2001:db8::1]");
    EXPECT_EQ(bad("user@[192.0.2.1"), AddressErrc::bad_domain);
}

TEST(Address, LengthViolationsFlaggedNotFatal) {
    EXPECT_EQ(ok(std::string(64, 'a') + "@example.org").violations, 0u);
    auto a = ok(std::string(65, 'a') + "@example.org");
    EXPECT_TRUE(a.violations & kLocalTooLong);
    std::string label(63, 'd');
    std::string domain = label + "." + label + "." + label + "." + label;  // 255
    EXPECT_FALSE(ok("u@" + domain).violations & kDomainTooLong);
    EXPECT_TRUE(ok("u@" + domain + "x").violations & kDomainTooLong);
    auto p = ok(std::string(64, 'a') + "@" + domain);
    EXPECT_TRUE(p.violations & kPathTooLong);
    EXPECT_FALSE(p.violations & kLocalTooLong);
}

TEST(Address, Helpers) {
    EXPECT_EQ(format_local("a b"), "\"a b\"");
    EXPECT_EQ(format_local("a\"b"), "\"a\\\"b\"");
    EXPECT_EQ(format_local("first.last+tag"), "first.last+tag");
    // Misplaced dots are accepted on input but quoted on output (RFC 5321 Dot-string).
    EXPECT_EQ(format_local("john..doe"), "\"john..doe\"");
    EXPECT_EQ(format_local(".dot"), "\".dot\"");
    EXPECT_EQ(format_local("dot."), "\"dot.\"");
    EXPECT_EQ(ok("john..doe@x.example").str(), "\"john..doe\"@x.example");
}

// What Postfix delivers to when it accepts a form parse_address refuses.
TEST(Address, LooseReadsWhatPostfixAccepts) {
    auto loose = [](std::string_view s) {
        auto r = parse_address_loose(s);
        EXPECT_TRUE(r.ok()) << s << ": " << (r ? "" : r.error().message);
        return r ? r->str() : std::string();
    };
    EXPECT_EQ(loose("<alice@ours.example.>"), "alice@ours.example");
    EXPECT_EQ(loose("<alice@OURS.Example..>"), "alice@OURS.Example");
    EXPECT_EQ(loose("<alice(a (nested) comment)@ours.example>"), "alice@ours.example");
    EXPECT_EQ(loose("<alice@ours.example(note)>"), "alice@ours.example");
    EXPECT_EQ(loose("<al ice @ ours.example>"), "alice@ours.example");
    EXPECT_EQ(loose("<ali\\ce@ours.example>"), "alice@ours.example");
    EXPECT_EQ(loose("<a:b@ours.example>"), "\"a:b\"@ours.example");
    EXPECT_EQ(loose("<\"a\\\"b\"@ours.example.>"), "\"a\\\"b\"@ours.example");
    EXPECT_EQ(loose("<@relay.example:alice@ours.example.>"), "alice@ours.example");
    EXPECT_EQ(loose("<\"x@y\"@ours.example.>"), "\"x@y\"@ours.example");
    EXPECT_EQ(loose("<x\\@y@ours.example.>"), "\"x@y\"@ours.example");
    EXPECT_EQ(loose("<alice@ours.example(unterminated>"), "alice@ours.example");
    EXPECT_EQ(loose("<a[b@ours.example.>"), "\"a[b\"@ours.example");
    EXPECT_EQ(loose("<a@[192.0.2.1]>"), "a@[192.0.2.1]");
}

TEST(Address, LooseStillNeedsLocalAndDomain) {
    EXPECT_FALSE(parse_address_loose("<alice>").ok());
    EXPECT_FALSE(parse_address_loose("<(x)@ours.example>").ok());
    EXPECT_FALSE(parse_address_loose("<alice@...>").ok());
    EXPECT_FALSE(parse_address_loose("").ok());
    EXPECT_FALSE(parse_address_loose("<>").ok());
}
