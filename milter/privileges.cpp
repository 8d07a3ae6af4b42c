#include "privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace backstop::milter {

std::string drop_privileges(const std::string& user) {
    struct passwd* pw = getpwnam(user.c_str());
    if (!pw) return "user '" + user + "' does not exist";
    if (initgroups(pw->pw_name, pw->pw_gid) != 0)
        return std::string("initgroups: ") + std::strerror(errno);
    if (setgid(pw->pw_gid) != 0) return std::string("setgid: ") + std::strerror(errno);
    if (setuid(pw->pw_uid) != 0) return std::string("setuid: ") + std::strerror(errno);
    // Make sure there is no way back.
    if (pw->pw_uid != 0 && setuid(0) == 0) return "could still regain root after setuid";
    return {};
}

std::string set_socket_permissions(const std::string& path, const std::string& mode,
                                   const std::string& group) {
    if (!group.empty()) {
        struct group* gr = getgrnam(group.c_str());
        if (!gr) return "socket-group '" + group + "' does not exist";
        if (chown(path.c_str(), uid_t(-1), gr->gr_gid) != 0)
            return "chgrp " + path + ": " + std::strerror(errno);
    }
    if (!mode.empty()) {
        mode_t m = mode_t(std::stoul(mode, nullptr, 8));
        if (chmod(path.c_str(), m) != 0) return "chmod " + path + ": " + std::strerror(errno);
    }
    return {};
}

}  // namespace backstop::milter
