#include "backstop/envelope/keyring.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

using namespace backstop;

namespace {

class TempFile {
  public:
    TempFile(const std::string& content, mode_t mode) {
        char tmpl[] = "/tmp/backstop-key-XXXXXX";
        int fd = mkstemp(tmpl);
        path_ = tmpl;
        if (write(fd, content.data(), content.size()) != ssize_t(content.size())) ADD_FAILURE();
        close(fd);
        chmod(path_.c_str(), mode);
    }
    ~TempFile() { std::remove(path_.c_str()); }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

}  // namespace

TEST(SecretList, ParsesPostsrsdFormat) {
    auto r = parse_secret_list("# comment\r\nfirst\r\n\n  second \n#x\nthird", "f");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->secrets, (std::vector<std::string>{"first", "second", "third"}));
}

TEST(SecretList, EmptyIsAnError) {
    auto r = parse_secret_list("\n# only comments\n\n", "secrets.txt");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, KeyFileErrc::empty);
    EXPECT_NE(r.error().message.find("secrets.txt"), std::string::npos);
}

TEST(BatvKeyFile, Parses) {
    auto r = parse_batv_keys("# rotation: newest first\n3 newer secret\n2\told\n", "k");
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->keys.size(), 2u);
    EXPECT_EQ(r->keys[0].number, 3);
    EXPECT_EQ(r->keys[0].secret, "newer secret");
    EXPECT_EQ(r->find(2)->secret, "old");
    EXPECT_EQ(r->find(5), nullptr);
}

TEST(BatvKeyFile, BadLinesNamed) {
    auto r = parse_batv_keys("1 ok\nx secret\n", "keys.conf");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, KeyFileErrc::bad_line);
    EXPECT_NE(r.error().message.find("keys.conf:2"), std::string::npos) << r.error().message;
    EXPECT_FALSE(parse_batv_keys("1 a\n1 b\n", "k").ok());
    EXPECT_FALSE(parse_batv_keys("12 a\n", "k").ok());
    EXPECT_FALSE(parse_batv_keys("1\n", "k").ok());
}

TEST(KeyFile, RefusesMissing) {
    auto r = load_secret_list("/nonexistent/backstop/secrets");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, KeyFileErrc::missing);
    EXPECT_NE(r.error().message.find("/nonexistent/backstop/secrets"), std::string::npos);
}

TEST(KeyFile, RefusesGroupOrWorldReadable) {
    TempFile world("secret\n", 0644);
    auto r = load_secret_list(world.path());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, KeyFileErrc::insecure);
    EXPECT_NE(r.error().message.find("0644"), std::string::npos);
    TempFile group("secret\n", 0640);
    EXPECT_EQ(load_secret_list(group.path()).error().code, KeyFileErrc::insecure);
}

TEST(KeyFile, RefusesEmptyFile) {
    TempFile empty("", 0600);
    EXPECT_EQ(load_secret_list(empty.path()).error().code, KeyFileErrc::empty);
}

TEST(KeyFile, RefusesDirectory) {
    EXPECT_FALSE(load_secret_list("/tmp").ok());
}

TEST(KeyFile, LoadsPrivateFiles) {
    TempFile s("one\ntwo\n", 0600);
    auto r = load_secret_list(s.path());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->secrets.size(), 2u);
    TempFile k("0 zero\n", 0400);
    auto b = load_batv_keys(k.path());
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->keys[0].secret, "zero");
}
