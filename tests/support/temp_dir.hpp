// A private directory under /tmp for one test (or one fuzz process), removed with all
// it holds when the object goes. write() makes 0600 files by default, because the
// daemon refuses key files that others can read.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace backstop::testing {

class TempDir {
  public:
    explicit TempDir(const std::string& prefix = "backstop-test") {
        std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
        if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    std::string write(const std::string& name, const std::string& content,
                      mode_t mode = 0600) const {
        std::string p = file(name);
        std::ofstream(p) << content;
        chmod(p.c_str(), mode);
        return p;
    }

  private:
    std::string path_;
};

}  // namespace backstop::testing
