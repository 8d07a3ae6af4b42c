// pidfile with user: started as root, the daemon makes the pidfile as the user it
// serves as (and a missing directory for it, as /run/backstop), writes its final
// pid (after detaching, when it does) and removes the file when it stops.
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "milter_process.hpp"
#include "read_file.hpp"
#include "temp_dir.hpp"

namespace backstop::test {
namespace {

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

uid_t owner(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_uid : uid_t(-1);
}

// Waits up to timeout for pred; its last value.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return pred();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

class Pidfile : public ::testing::Test {
  protected:
    // Searchable by everyone, so that "nobody" can reach what lies inside.
    testing::TempDir dir{"backstop-pidfile"};
    uid_t nobody = 0;

    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "needs root to start as root and drop to a user";
        const passwd* pw = getpwnam("nobody");
        ASSERT_NE(pw, nullptr);
        nobody = pw->pw_uid;
        ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
    }

    std::string config(const std::string& pidfile, bool foreground) const {
        return "socket = inet:" + std::to_string(free_port()) +
               "@127.0.0.1\nuser = nobody\npidfile = " + pidfile +
               "\nforeground = " + (foreground ? "true" : "false") +
               "\n[domains]\nlocal = ours.example\ninternal-networks = 127.0.0.1/32\n";
    }
};

}  // namespace

TEST_F(Pidfile, MadeForTheUserAndRemovedAtExit) {
    const std::string run = dir.file("run");  // missing: the daemon makes it
    const std::string pidfile = run + "/backstop-milter.pid";
    MilterSettings s;
    s.args = {"--user", "nobody", "--pidfile", pidfile};
    MilterProcess milter(s);
    ASSERT_TRUE(milter.wait_for_log("as nobody", std::chrono::seconds(5))) << milter.log();
    EXPECT_EQ(owner(run), nobody);
    EXPECT_EQ(owner(pidfile), nobody);
    EXPECT_EQ(testing::read_file(pidfile), std::to_string(milter.pid()) + "\n");
    EXPECT_EQ(milter.terminate(), 0) << milter.log();
    EXPECT_FALSE(exists(pidfile)) << "pidfile left behind";
    EXPECT_TRUE(exists(run));  // the directory stays, as systemd's RuntimeDirectory does
}

// A pidfile root left behind (a killed milter of an older version) in the user's
// directory is replaced, not a reason to refuse to start.
TEST_F(Pidfile, StaleFileOfAnotherUserIsReplaced) {
    const std::string run = dir.file("run");
    const std::string pidfile = run + "/backstop-milter.pid";
    ASSERT_EQ(::mkdir(run.c_str(), 0755), 0);
    ASSERT_EQ(::chown(run.c_str(), nobody, gid_t(-1)), 0);
    dir.write("run/backstop-milter.pid", "99999\n", 0644);  // root's
    MilterSettings s;
    s.args = {"--user", "nobody", "--pidfile", pidfile};
    MilterProcess milter(s);
    // The socket listens before the pidfile is written; "listening ... as nobody" follows it.
    ASSERT_TRUE(milter.wait_for_log("as nobody", std::chrono::seconds(5))) << milter.log();
    EXPECT_EQ(owner(pidfile), nobody);
    EXPECT_EQ(testing::read_file(pidfile), std::to_string(milter.pid()) + "\n");
    EXPECT_EQ(milter.terminate(), 0) << milter.log();
    EXPECT_FALSE(exists(pidfile));
}

// A directory the user may not write: refused before the milter serves, in one line
// on the terminal, and no file is left.
TEST_F(Pidfile, DirectoryTheUserCannotWriteIsRefused) {
    const std::string pidfile = dir.file("backstop-milter.pid");  // dir: root's, 0755
    const std::string conf = dir.write("milter.conf", config(pidfile, true), 0644);
    auto r = run_command({BACKSTOP_MILTER, "--config", conf});
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_EQ(r.output, "backstop-milter: cannot write pidfile " + pidfile +
                            " as nobody: Permission denied (it must lie in a directory that "
                            "user may write, to be removed at exit)\n");
    EXPECT_FALSE(exists(pidfile));
}

// Detached (foreground = false): the file holds the daemon's pid, not the pid of
// the process that started it, and goes when the daemon stops.
TEST_F(Pidfile, DaemonWritesItsOwnPid) {
    const std::string pidfile = dir.file("run/backstop-milter.pid");
    const std::string conf = dir.write("milter.conf", config(pidfile, false), 0644);
    auto r = run_command({BACKSTOP_MILTER, "--config", conf});
    ASSERT_EQ(r.status, 0) << r.output;
    ASSERT_TRUE(wait_until(
        [&] {
            auto text = testing::read_file(pidfile);
            return !text.empty() && text.back() == '\n';
        },
        std::chrono::seconds(5)))
        << "no pidfile " << pidfile;
    const pid_t pid = pid_t(std::stol(testing::read_file(pidfile)));
    ASSERT_GT(pid, 1);
    // The daemon itself, serving as nobody.
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line, uid;
    while (std::getline(status, line)) {
        if (line.rfind("Uid:", 0) == 0) std::istringstream(line.substr(4)) >> uid;
    }
    EXPECT_EQ(uid, std::to_string(nobody));
    EXPECT_EQ(owner(pidfile), nobody);
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    const bool removed = wait_until([&] { return !exists(pidfile); }, std::chrono::seconds(15));
    if (!removed) ::kill(pid, SIGKILL);
    EXPECT_TRUE(removed) << "pidfile left behind";
}

}  // namespace backstop::test
