// Starting and stopping backstop-milter for the protocol tests.
#include "milter_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "read_file.hpp"

#ifndef BACKSTOP_MILTER
#define BACKSTOP_MILTER "backstop-milter"
#endif

namespace backstop::test {

namespace {

// The binary under test; BACKSTOP_MILTER in the environment overrides the built one
// (to run it under valgrind or strace, say).
std::string milter_binary() {
    if (const char* env = std::getenv("BACKSTOP_MILTER"); env != nullptr && *env != '\0')
        return env;
    return BACKSTOP_MILTER;
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
    {
        std::ofstream out(path, std::ios::trunc);
        out << text;
        if (!out) throw std::runtime_error("cannot write " + path);
    }
    ::chmod(path.c_str(), mode);  // key files must not be group/world readable
}

}  // namespace

std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = 0;  // the kernel picks one
    socklen_t len = sizeof sin;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0)
        throw std::runtime_error("cannot find a free loopback port");
    ::close(fd);
    return ntohs(sin.sin_port);
}

std::string strip_angle(std::string_view address) {
    if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
        address = address.substr(1, address.size() - 2);
    return std::string(address);
}

CommandResult run_command(const std::vector<std::string>& argv) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(pipefd[1], 1);
        ::dup2(pipefd[1], 2);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(pipefd[1]);
    CommandResult result;
    char buf[4096];
    for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) result.output.append(buf, n);
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

MilterProcess::MilterProcess(MilterSettings settings) : settings_(std::move(settings)) {
    char tmpl[] = "/tmp/backstop-protocol-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    config_path_ = dir_ + "/backstop.conf";
    log_path_ = dir_ + "/milter.log";
    write_file(dir_ + "/srs.secrets", std::string(kSrsSecret) + "\n", 0600);
    write_file(dir_ + "/batv.keys", std::to_string(kBatvKeyNumber) + " " + kBatvSecret + "\n",
               0600);
    // A port can be taken between free_port() and the daemon's bind: try a few.
    for (int attempt = 0;; ++attempt) {
        port_ = free_port();
        if (settings_.socketmap == SocketmapKind::inet) {
            do {
                socketmap_port_ = free_port();
            } while (socketmap_port_ == port_);
        }
        write_file(config_path_, config_text(settings_), 0644);
        try {
            start();
            wait_ready();
            return;
        } catch (const std::exception&) {
            terminate();
            if (attempt == 2) {
                auto log_text = log();
                std::filesystem::remove_all(dir_);
                throw std::runtime_error("backstop-milter did not start; its stderr:\n" + log_text);
            }
        }
    }
}

MilterProcess::~MilterProcess() {
    terminate();
    if (std::getenv("BACKSTOP_KEEP_TMP") == nullptr) {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
}

std::string MilterProcess::config_text(const MilterSettings& s) const {
    std::ostringstream c;
    c << "socket = " << socket_spec() << "\n"
      << "foreground = true\n"
      << "log-level = " << s.log_level << "\n"
      << "allow-root = true\n";
    if (s.socketmap != SocketmapKind::off) c << "socketmap = " << socketmap_spec() << "\n";
    c << s.general << "[domains]\n"
      << "local = " << kLocalDomain << "\n"
      << "internal-networks = 127.0.0.1/32\n"
      << "[srs]\n"
      << "enable = true\n"
      << "domain = " << kSrsDomain << "\n"
      << "secrets = " << dir_ << "/srs.secrets\n"
      << "[batv]\n"
      << "enable = true\n"
      << "keys = " << dir_ << "/batv.keys\n"
      << "lifetime = " << s.lifetime << "\n"
      << "[inbound]\n"
      << "unsigned-bounce = " << s.unsigned_bounce << "\n"
      << "bad-signature = " << s.bad_signature << "\n"
      << "exempt-recipients = " << s.exempt_recipients << "\n"
      << s.extra;
    return c.str();
}

std::string MilterProcess::socket_spec() const {
    switch (settings_.socket) {
        case SocketKind::inet:
            return "inet:" + std::to_string(port_) + "@127.0.0.1";
        case SocketKind::inet6:
            return "inet6:" + std::to_string(port_) + "@[::1]";
        case SocketKind::inet6_any:
            return "inet6:" + std::to_string(port_);
        case SocketKind::unix_:
            return "unix:" + dir_ + "/milter.sock";
    }
    return {};
}

std::string MilterProcess::socketmap_spec() const {
    switch (settings_.socketmap) {
        case SocketmapKind::off:
            return {};
        case SocketmapKind::unix_:
            return "unix:" + socketmap_path();
        case SocketmapKind::inet:
            return "inet:" + std::to_string(socketmap_port_) + "@127.0.0.1";
    }
    return {};
}

MilterClient MilterProcess::connect(ClientOptions options) const {
    switch (settings_.socket) {
        case SocketKind::inet:
            return MilterClient::connect_tcp("127.0.0.1", port_, options);
        case SocketKind::inet6:
        case SocketKind::inet6_any:
            return MilterClient::connect_tcp("::1", port_, options);
        case SocketKind::unix_:
            return MilterClient::connect_unix(dir_ + "/milter.sock", options);
    }
    throw MilterError("unknown socket kind");
}

void MilterProcess::start() {
    auto binary = milter_binary();
    std::vector<std::string> argv = settings_.wrapper;
    for (std::string a :
         {binary, std::string("--config"), config_path_, std::string("--foreground")})
        argv.push_back(a);
    // The protocol suite runs once per engine (tests/protocol/CMakeLists.txt).
    if (const char* engine = std::getenv("BACKSTOP_TEST_ENGINE");
        engine && *engine && settings_.engine_from_environment) {
        argv.push_back("--engine");
        argv.push_back(engine);
    }
    argv.insert(argv.end(), settings_.args.begin(), settings_.args.end());
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        // No orphaned daemons when the test binary dies (a crash, a SIGPIPE).
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
}

// Ready when the port accepts a connection; fails early when the daemon exits.
void MilterProcess::wait_ready() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
        if (!alive()) throw std::runtime_error("backstop-milter exited");
        try {
            ClientOptions quick;
            quick.timeout = std::chrono::milliseconds(500);
            auto probe = connect(quick);
            return;  // closing without a word is fine for the daemon
        } catch (const MilterError&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    throw std::runtime_error("backstop-milter did not listen in time");
}

bool MilterProcess::alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return false;
    }
    return true;
}

int MilterProcess::terminate(std::chrono::milliseconds grace) {
    if (!alive()) return -1;
    ::kill(pid_, SIGTERM);
    // It lets messages under way finish first (up to 10 s).
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (alive() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (alive()) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
        return -1;
    }
    return exit_status_;
}

std::string MilterProcess::log() const {
    return testing::read_file(log_path_);
}

bool MilterProcess::wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
        if (log().find(needle) != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

MilterClient MilterProcess::client(ClientOptions options) const {
    auto c = connect(options);
    c.negotiate();
    return c;
}

void MilterProcess::reload(const std::string& text) {
    // Write then rename, so the daemon never reads a half-written file.
    write_file(config_path_ + ".new", text, 0644);
    std::filesystem::rename(config_path_ + ".new", config_path_);
    signal(SIGUSR1);
}

void MilterProcess::signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
}

std::string engine_under_test() {
    const char* e = std::getenv("BACKSTOP_TEST_ENGINE");
    return e && *e ? e : "native";
}

}  // namespace backstop::test
