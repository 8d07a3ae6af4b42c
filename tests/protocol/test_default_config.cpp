// Which configuration the daemon reads: /etc/backstop/backstop.conf when no --config
// is given (a missing file is an error naming it, never a start on built-in
// defaults), and it refuses to start, in one line, until [domains] local is set.
// The tests that need /etc/backstop run the daemon in a mount namespace whose /etc
// is an overlay, so the machine's own /etc/backstop is neither read nor touched.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "milter_process.hpp"
#include "temp_dir.hpp"

namespace backstop::test {
namespace {

constexpr const char* kDefault = "/etc/backstop/backstop.conf";
constexpr const char* kLocalNotSet =
    "[domains] local is not set: set it to the domains this host sends mail for "
    "(local = example.org)";

// In its own mount namespace: /etc overlaid by a tmpfs, /etc/backstop replaced by
// nothing ($1 empty) or by a directory holding $1 as backstop.conf, then the command.
const char* kWithOwnEtc =
    "mount -t tmpfs none \"$0\" && mkdir \"$0/up\" \"$0/work\" &&"
    " mount -t overlay overlay -o lowerdir=/etc,upperdir=\"$0/up\",workdir=\"$0/work\" /etc &&"
    " rm -rf /etc/backstop &&"
    " if [ -n \"$1\" ]; then mkdir /etc/backstop && cp \"$1\" /etc/backstop/backstop.conf; fi &&"
    " shift && exec \"$@\"";

class DefaultConfig : public ::testing::Test {
  protected:
    testing::TempDir dir{"backstop-default-config"};

    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "needs root (a mount namespace)";
        // A container without CAP_SYS_ADMIN, or without overlayfs: say so loudly.
        if (run_with_etc("", {"/bin/true"}).status != 0)
            GTEST_SKIP() << "SKIPPED: no mount namespace with an overlay on /etc here";
    }

    // Runs argv with /etc/backstop/backstop.conf holding config_text (none when empty).
    CommandResult run_with_etc(const std::string& config_text, std::vector<std::string> argv) {
        std::string conf;
        if (!config_text.empty()) conf = dir.write("backstop.conf", config_text);
        const std::string scratch = dir.file("ns" + std::to_string(++runs_));
        ::mkdir(scratch.c_str(), 0700);
        std::vector<std::string> cmd = {"/usr/bin/unshare", "--mount", "--propagation",
                                        "private",          "/bin/sh", "-c",
                                        kWithOwnEtc,        scratch,   conf};
        cmd.insert(cmd.end(), argv.begin(), argv.end());
        return run_command(cmd);
    }

    // A configuration that passes, without key files: BATV and SRS stay off.
    std::string good(const std::string& extra = "") const {
        return "socket = inet:" + std::to_string(free_port()) +
               "@127.0.0.1\nforeground = true\nallow-root = true\n"
               "[domains]\nlocal = ours.example\ninternal-networks = 127.0.0.1/32\n" +
               extra;
    }

    int runs_ = 0;
};

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t nl = text.find('\n', start);
        out.push_back(text.substr(start, nl - start));
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    return out;
}

}  // namespace

TEST_F(DefaultConfig, CheckConfigReadsTheDefaultFile) {
    auto r = run_with_etc(good(), {BACKSTOP_MILTER, "--check-config"});
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output, std::string("backstop-milter: configuration OK (") + kDefault + ")\n");
}

// The case the issue found: --check-config must never say OK for a file it did not
// read, nor for a default file with an unknown key.
TEST_F(DefaultConfig, UnknownKeyInTheDefaultFileIsAnError) {
    const std::string text = good("frobnicate = yes\n");
    auto r = run_with_etc(text, {BACKSTOP_MILTER, "--check-config"});
    EXPECT_EQ(r.status, 1) << r.output;
    const auto n = std::count(text.begin(), text.end(), '\n');
    EXPECT_EQ(r.output, std::string("backstop-milter: ") + kDefault + ":" + std::to_string(n) +
                            ": unknown key 'frobnicate' in [domains]\n");
    // The daemon itself does not start either.
    auto start = run_with_etc(text, {BACKSTOP_MILTER});
    EXPECT_EQ(start.status, 1) << start.output;
    EXPECT_NE(start.output.find("unknown key 'frobnicate'"), std::string::npos) << start.output;
}

TEST_F(DefaultConfig, MissingDefaultFileIsAnErrorNamingIt) {
    for (std::vector<std::string> argv :
         {std::vector<std::string>{BACKSTOP_MILTER, "--check-config"},
          std::vector<std::string>{BACKSTOP_MILTER},
          std::vector<std::string>{BACKSTOP_MILTER, "--stats"}}) {
        auto r = run_with_etc("", argv);
        EXPECT_EQ(r.status, 1) << argv.size() << ": " << r.output;
        EXPECT_EQ(r.output, std::string("backstop-milter: ") + kDefault +
                                ": cannot open the configuration file: No such file or "
                                "directory\n")
            << argv.size();
    }
}

// An unedited sample names no domain: one line that says what to set.
TEST_F(DefaultConfig, NoLocalDomainRefusesInOneLine) {
    const std::string text =
        "socket = inet:" + std::to_string(free_port()) + "@127.0.0.1\nallow-root = true\n";
    for (std::vector<std::string> argv :
         {std::vector<std::string>{BACKSTOP_MILTER, "--check-config"},
          std::vector<std::string>{BACKSTOP_MILTER, "--foreground"}}) {
        auto r = run_with_etc(text, argv);
        EXPECT_EQ(r.status, 1) << r.output;
        EXPECT_EQ(lines(r.output), std::vector<std::string>{std::string("backstop-milter: ") +
                                                            kDefault + ": " + kLocalNotSet})
            << r.output;
    }
}

// Without a namespace: --config names the file, and /dev/null means built-in
// defaults, which still need our domains.
TEST(ConfigFile, DevNullIsBuiltInDefaultsButNeedsOurDomains) {
    auto bare = run_command({BACKSTOP_MILTER, "--config", "/dev/null", "--check-config"});
    EXPECT_EQ(bare.status, 1) << bare.output;
    EXPECT_EQ(bare.output, std::string("backstop-milter: /dev/null: ") + kLocalNotSet + "\n");
    auto named =
        run_command({BACKSTOP_MILTER, "--config", "/dev/null", "--domains.local", "ours.example",
                     "--domains.internal-networks", "127.0.0.1/32", "--check-config"});
    EXPECT_EQ(named.status, 0) << named.output;
    EXPECT_EQ(named.output, "backstop-milter: configuration OK (/dev/null)\n");
}

// SRS on without its domain, in an otherwise edited sample: the next line to fix.
TEST(ConfigFile, SrsWithoutDomainRefusesInOneLine) {
    auto r =
        run_command({BACKSTOP_MILTER, "--config", "/dev/null", "--domains.local", "ours.example",
                     "--srs.enable", "--srs.secrets", "/nonexistent", "--check-config"});
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_EQ(r.output,
              "backstop-milter: /dev/null: [srs] domain is not set: set it to a domain whose MX "
              "is this host, for the senders of forwarded mail (domain = fwd.example.org), or "
              "set enable = false\n");
}

// Loopback outside internal-networks: a warning (Sendmail's local mail would be
// inbound), not an error.
TEST(ConfigFile, LoopbackNotInternalWarns) {
    auto r =
        run_command({BACKSTOP_MILTER, "--config", "/dev/null", "--domains.local", "ours.example",
                     "--domains.internal-networks", "192.0.2.0/24", "--check-config"});
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("backstop-milter: warning: [domains] internal-networks leaves out "
                            "127.0.0.1: "),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("configuration OK"), std::string::npos) << r.output;
}

}  // namespace backstop::test
