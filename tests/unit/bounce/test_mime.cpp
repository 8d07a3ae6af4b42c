// The MIME reader: headers, encodings, multiparts, line ends, broken input.
#include <gtest/gtest.h>

#include <string>

#include "backstop/bounce/mime.hpp"

using namespace backstop;

TEST(Mime, UnfoldsHeadersAndKeepsOrder) {
    auto m = parse_mime("Subject: one\n two\nX-A: 1\nx-a: 2\n\nbody\n");
    EXPECT_EQ(m.root.headers.get("subject"), "one two");
    EXPECT_EQ(m.root.headers.get("X-A"), "1");
    EXPECT_EQ(m.root.headers.count("X-A"), 2u);
    EXPECT_EQ(m.root.body, "body\n");
}

TEST(Mime, LineEndsAreNormalised) {
    for (std::string eol : {"\n", "\r\n", "\r"}) {
        std::string msg = "A: b" + eol + "Content-Type: multipart/mixed; boundary=x" + eol + eol +
                          "--x" + eol + "Content-Type: text/plain" + eol + eol + "hello" + eol +
                          "--x--" + eol;
        auto m = parse_mime(msg);
        ASSERT_EQ(m.root.children.size(), 1u) << "eol " << eol.size();
        EXPECT_EQ(m.root.children[0].body, "hello");
    }
}

TEST(Mime, DecodesBase64AndQuotedPrintable) {
    EXPECT_EQ(decode_base64_lenient("aGVs\nbG8="), "hello");
    EXPECT_EQ(decode_base64_lenient("aGVsbG8"), "hello");  // no padding
    EXPECT_EQ(decode_quoted_printable("caf=C3=A9 =\nsoft"), "caf\xC3\xA9 soft");
    EXPECT_EQ(decode_quoted_printable("a=ZZb"), "a=ZZb");        // broken escape kept
    EXPECT_EQ(decode_quoted_printable("a= \t\nb=3D="), "ab==");  // blanks before a soft break
    auto m = parse_mime("Content-Transfer-Encoding: base64\n\naGVsbG8K\n");
    EXPECT_EQ(m.root.body, "hello\n");
}

TEST(Mime, EncodedWords) {
    EXPECT_EQ(decode_header_words("=?UTF-8?B?5LiN5Zyo?= =?UTF-8?Q?=E3=81=AE?="), "不在の");
    EXPECT_EQ(decode_header_words("=?ISO-8859-1?Q?caf=E9?="), "caf\xC3\xA9");
    EXPECT_EQ(decode_header_words("plain =?bogus"), "plain =?bogus");
    // ISO-2022-JP converts when iconv knows it.
    EXPECT_EQ(decode_header_words("=?ISO-2022-JP?B?GyRCSVQ6XxsoQg==?="), "不在");
}

TEST(Mime, ContentTypeParameters) {
    auto ct =
        parse_content_type("Multipart/Report; report-type=delivery-status;\n boundary=\"a b;c\"");
    EXPECT_EQ(ct.type, "multipart/report");
    EXPECT_EQ(ct.param("report-type"), "delivery-status");
    EXPECT_EQ(ct.param("boundary"), "a b;c");
    // No ';' between parameters (seen in the wild).
    auto broken =
        parse_content_type("multipart/report; boundary=\"x\" report-type=delivery-status");
    EXPECT_EQ(broken.param("boundary"), "x");
    EXPECT_EQ(broken.param("report-type"), "delivery-status");
}

TEST(Mime, NestedMultipartAndEnclosedMessage) {
    std::string msg =
        "Content-Type: multipart/mixed; boundary=outer\n\n"
        "--outer\nContent-Type: multipart/alternative; boundary=inner\n\n"
        "--inner\nContent-Type: text/plain\n\nplain\n--inner\nContent-Type: "
        "text/html\n\n<p>x</p>\n--inner--\n"
        "--outer\nContent-Type: message/rfc822\n\nMessage-ID: <m@x>\nSubject: s\n\nenclosed\n"
        "--outer--\n";
    auto m = parse_mime(msg);
    ASSERT_EQ(m.root.children.size(), 2u);
    ASSERT_EQ(m.root.children[0].children.size(), 2u);
    EXPECT_EQ(m.root.children[0].children[0].body, "plain");
    ASSERT_EQ(m.root.children[1].children.size(), 1u);
    EXPECT_EQ(m.root.children[1].children[0].headers.get("Message-ID"), "<m@x>");
    EXPECT_EQ(m.root.children[1].children[0].body, "enclosed");
}

TEST(Mime, Rfc822HeadersPart) {
    auto m = parse_mime(
        "Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: text/rfc822-headers\n\n"
        "Message-ID: <h@x>\nFrom: a@x\n--b--\n");
    ASSERT_EQ(m.root.children.size(), 1u);
    ASSERT_EQ(m.root.children[0].children.size(), 1u);
    EXPECT_TRUE(m.root.children[0].children[0].headers_only);
    EXPECT_EQ(m.root.children[0].children[0].headers.get("From"), "a@x");
}

TEST(Mime, MissingAndWrongBoundaries) {
    // Declared boundary never used: the one in the body is found.
    auto wrong = parse_mime(
        "Content-Type: multipart/mixed; boundary=nope\n\n--real\nContent-Type: text/plain\n\none\n"
        "--real\nContent-Type: text/plain\n\ntwo\n--real--\n");
    ASSERT_EQ(wrong.root.children.size(), 2u);
    EXPECT_EQ(wrong.root.children[1].body, "two");
    // No closing delimiter (truncated): the last part runs to the end.
    auto open =
        parse_mime("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nfirst\n--b\n\nsecond part");
    ASSERT_EQ(open.root.children.size(), 2u);
    EXPECT_EQ(open.root.children[1].body, "second part");
    // No boundary at all: the body stays text.
    auto none = parse_mime("Content-Type: multipart/mixed\n\njust text\n");
    EXPECT_TRUE(none.root.children.empty());
    EXPECT_EQ(none.root.body, "just text\n");
}

TEST(Mime, BoundaryPrefixIsNotABoundary) {
    auto m =
        parse_mime("Content-Type: multipart/mixed; boundary=ab\n\n--ab\n\nx\n--abc\ny\n--ab--\n");
    ASSERT_EQ(m.root.children.size(), 1u);
    EXPECT_EQ(m.root.children[0].body, "x\n--abc\ny");
}

TEST(Mime, ByteCapAndDepthLimit) {
    std::string big = "Subject: x\n\n" + std::string(100000, 'a');
    MimeLimits limits;
    limits.max_bytes = 1000;
    auto m = parse_mime(big, limits);
    EXPECT_TRUE(m.truncated);
    EXPECT_LE(m.root.body.size(), 1000u);

    std::string deep;
    for (int i = 0; i < 100; ++i) deep += "Content-Type: message/rfc822\n\n";
    deep += "Subject: bottom\n\nx\n";
    auto d = parse_mime(deep);  // must not recurse without bound
    int depth = 0;
    const MimeEntity* e = &d.root;
    while (!e->children.empty()) {
        e = &e->children.front();
        ++depth;
    }
    EXPECT_LE(depth, MimeLimits{}.max_depth);
}

TEST(Mime, GarbageDoesNotBreakIt) {
    auto m = parse_mime(std::string("\0\xff\r\r\n--\n:\n \n", 12));
    (void)m;
    auto e = parse_mime("");
    EXPECT_TRUE(e.root.headers.fields.empty());
}

TEST(Mime, OtherPartsLeftUndecodedOnRequest) {
    std::string msg =
        "Content-Type: multipart/mixed; boundary=\"b\"\n"
        "\n"
        "--b\n"
        "Content-Type: text/plain\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "aGVsbG8=\n"
        "--b\n"
        "Content-Type: image/png\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "aGVsbG8=\n"
        "--b--\n";
    auto all = parse_mime(msg);
    ASSERT_EQ(all.root.children.size(), 2u);
    EXPECT_EQ(all.root.children[0].body, "hello");
    EXPECT_EQ(all.root.children[1].body, "hello");
    MimeLimits limits;
    limits.decode_other_parts = false;  // what the classifier asks for
    auto text_only = parse_mime(msg, limits);
    ASSERT_EQ(text_only.root.children.size(), 2u);
    EXPECT_EQ(text_only.root.children[0].body, "hello");
    EXPECT_EQ(text_only.root.children[1].body, "");
    EXPECT_EQ(text_only.root.children[1].content_type.type, "image/png");
}
