#include "pidfile.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace backstop::milter {

std::string PidFile::prepare_directory(const std::string& path, const std::string& user) {
    const std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) return {};
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) return {};
    if (errno != ENOENT) return "pidfile directory " + dir + ": " + std::strerror(errno);
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr) return "user '" + user + "' does not exist";
    if (::mkdir(dir.c_str(), 0755) != 0)
        return "cannot make the pidfile directory " + dir + ": " + std::strerror(errno);
    if (::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        return "cannot give the pidfile directory " + dir + " to " + user + ": " +
               std::strerror(errno);
    return {};
}

std::string PidFile::open(const std::string& path) {
    std::error_code ec;
    path_ = std::filesystem::absolute(path, ec).string();
    if (ec) path_ = path;
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    int e = errno;
    // A stale file of another user (root's, from an older start) in a directory we
    // may write: replace it rather than refuse to start.
    if (fd_ < 0 && e == EACCES && ::unlink(path_.c_str()) == 0) {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        e = errno;
    }
    if (fd_ < 0) {
        const passwd* pw = ::getpwuid(::geteuid());
        path_.clear();
        return "cannot write pidfile " + path + " as " +
               (pw != nullptr ? std::string(pw->pw_name) : std::to_string(::geteuid())) + ": " +
               std::strerror(e) +
               " (it must lie in a directory that user may write, to be removed at exit)";
    }
    struct stat st {};
    if (::fstat(fd_, &st) == 0) {
        dev_ = st.st_dev;
        ino_ = st.st_ino;
    }
    return {};
}

std::string PidFile::write(pid_t pid) {
    if (fd_ < 0) return {};
    const std::string text = std::to_string(pid) + "\n";
    if (::ftruncate(fd_, 0) != 0 ||
        ::pwrite(fd_, text.data(), text.size(), 0) != ssize_t(text.size()))
        return "cannot write pidfile " + path_ + ": " + std::strerror(errno);
    return {};
}

void PidFile::remove() {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    // Only our file: not one that an administrator put there in the meantime.
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        ::unlink(path_.c_str());
}

}  // namespace backstop::milter
