// `user = NAME`: the daemon really runs as that user once it serves, in every
// thread (the event loops, the signal thread, the stats thread).
#include <dirent.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "milter_client.hpp"
#include "milter_process.hpp"
#include "temp_dir.hpp"

namespace backstop::test {
namespace {

// "Uid:" and "Gid:" lines of /proc/PID/task/TID/status: real, effective, saved, fs.
std::vector<std::string> id_lines(pid_t pid) {
    std::vector<std::string> out;
    std::string base = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = opendir(base.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream status(base + "/" + e->d_name + "/status");
        for (std::string line; std::getline(status, line);) {
            if (line.rfind("Uid:", 0) == 0 || line.rfind("Gid:", 0) == 0 ||
                line.rfind("Groups:", 0) == 0)
                out.push_back(std::string(e->d_name) + " " + line);
        }
    }
    closedir(d);
    return out;
}

}  // namespace

TEST(Privileges, RunsAsConfiguredUserInEveryThread) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to start as root and drop to a user";
    const passwd* pw = getpwnam("nobody");
    ASSERT_NE(pw, nullptr);
    const std::string uid = std::to_string(pw->pw_uid), gid = std::to_string(pw->pw_gid);

    MilterSettings s;
    s.args = {"--user", "nobody", "--stats-socket",
              "inet:" + std::to_string(free_port()) + "@127.0.0.1"};
    MilterProcess milter(s);
    ASSERT_TRUE(milter.wait_for_log("as nobody", std::chrono::seconds(5))) << milter.log();

    // Serve one message first, so every thread has done some work.
    auto client = milter.client();
    Message m;
    m.client_addr = "127.0.0.1";
    m.sender = "<alice@ours.example>";
    m.recipients = {"<bob@remote.example>"};
    m.headers = {{"From", "alice@ours.example"}, {"Subject", "hi"}};
    Transcript t = client.send_message(m);
    ASSERT_TRUE(t.eom.has_value());
    EXPECT_TRUE(t.eom->new_sender.has_value());

    auto lines = id_lines(milter.pid());
    ASSERT_GE(lines.size(), 3u * 3u) << "expected several threads";  // 3 lines per thread
    for (const auto& line : lines) {
        std::istringstream in(line);
        std::string tid, key, v;
        in >> tid >> key;
        std::vector<std::string> ids;
        while (in >> v) ids.push_back(v);
        if (key == "Groups:") {
            // initgroups(nobody): root's supplementary groups are gone.
            for (const auto& g : ids) EXPECT_NE(g, "0") << line;
            continue;
        }
        ASSERT_EQ(ids.size(), 4u) << line;
        for (const auto& id : ids) EXPECT_EQ(id, key == "Uid:" ? uid : gid) << line;
    }
    client.quit();
}

}  // namespace backstop::test

namespace backstop::test {

// Started as root with neither 'user' nor 'allow-root': the daemon refuses to start
// and says what to set, before it opens a socket.
TEST(Privileges, RootWithoutUserRefused) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    testing::TempDir dir;
    const std::uint16_t port = free_port();
    std::string conf = dir.write("backstop.conf", "socket = inet:" + std::to_string(port) +
                                                      "@127.0.0.1\nforeground = true\n"
                                                      "[domains]\nlocal = ours.example\n");
    auto r = run_command({BACKSTOP_MILTER, "--config", conf});
    EXPECT_NE(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("refusing to run as root: set 'user'"), std::string::npos) << r.output;
}

}  // namespace backstop::test
