// The pidfile: made by the user the milter serves as, so that the same user can
// remove it when the milter stops. Opened before the milter detaches (a path it
// cannot write is an error on the terminal, not in syslog), written once the pid
// is final, removed at the end.
#pragma once

#include <sys/types.h>

#include <string>

namespace backstop::milter {

class PidFile {
  public:
    PidFile() = default;
    ~PidFile() { remove(); }
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;

    // As root, before switching to 'user': a missing directory of the pidfile (the
    // last component only, like /run/backstop) is made for that user, mode 0755. An
    // existing directory is left as it is. Empty on success, else why not.
    static std::string prepare_directory(const std::string& path, const std::string& user);

    // Creates or opens the file as the current user. Empty on success, else why not.
    std::string open(const std::string& path);
    // Writes the pid (after daemon(), which changes it). Empty on success.
    std::string write(pid_t pid);
    // Removes the file, if it is still the one we made. Safe to call twice.
    void remove();

  private:
    std::string path_;  // absolute: daemon() changes the working directory
    int fd_ = -1;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

}  // namespace backstop::milter
