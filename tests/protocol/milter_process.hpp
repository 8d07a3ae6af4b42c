// Runs the real backstop-milter for a test: a temp directory with a config and 0600
// key files, a free loopback port, the daemon in --foreground with stderr to a file,
// and a kill at the end.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "backstop/envelope/batv.hpp"
#include "backstop/envelope/srs.hpp"
#include "milter_client.hpp"

namespace backstop::test {

// Fixed keys, so tests can compute the expected tags with the core library.
inline constexpr const char* kBatvSecret = "protocol-test-batv-secret";
inline constexpr int kBatvKeyNumber = 1;
inline constexpr const char* kSrsSecret = "protocol-test-srs-secret";
inline constexpr const char* kLocalDomain = "ours.example";
inline constexpr const char* kSrsDomain = "fwd.ours.example";

// The daemon's codecs as its config keys them, to compute expected tags and SRS.
inline BatvSigner test_signer(int number = kBatvKeyNumber, const std::string& secret = kBatvSecret,
                              int lifetime = 7) {
    BatvKeys keys;
    keys.keys.push_back({number, secret});
    return BatvSigner(keys, BatvOptions{lifetime, false});
}

inline SrsCodec test_srs() {
    SrsSecrets secrets;
    secrets.secrets.push_back(kSrsSecret);
    SrsOptions options;
    options.domain = kSrsDomain;
    return SrsCodec(secrets, options);
}

inline UnixTime now() {
    return static_cast<UnixTime>(std::time(nullptr));
}

// Where the daemon listens: the three socket forms of the config.
enum class SocketKind {
    inet,       // inet:PORT@127.0.0.1
    inet6,      // inet6:PORT@[::1]
    inet6_any,  // inet6:PORT, no host: IPv4 and IPv6 on one socket, as libmilter
    unix_,      // unix:DIR/milter.sock
};

// Where the socketmap listens, if at all.
enum class SocketmapKind {
    off,
    unix_,  // unix:DIR/socketmap
    inet,   // inet:PORT@127.0.0.1
};

// The settings tests vary; everything else is fixed in config_text().
struct MilterSettings {
    SocketKind socket = SocketKind::inet;
    std::vector<std::string> args;  // extra command-line options, e.g. {"--srs.domain", "x"}
    std::string unsigned_bounce = "reject";
    std::string bad_signature = "reject";
    std::string exempt_recipients = "postmaster@*";
    int lifetime = 7;
    std::string log_level = "debug";
    std::string extra;  // appended verbatim at the end (inside [inbound])
    // --engine from $BACKSTOP_TEST_ENGINE on the command line (which a reload keeps);
    // off for a test that sets the engine in the file.
    bool engine_from_environment = true;
    SocketmapKind socketmap = SocketmapKind::off;
    std::string general;  // general keys, appended verbatim before the first section
    // Runs the daemon through this command (its argv is appended), e.g. unshare.
    std::vector<std::string> wrapper;
};

class MilterProcess {
  public:
    // Throws std::runtime_error (with the daemon's stderr) when it does not come up.
    explicit MilterProcess(MilterSettings settings = {});
    ~MilterProcess();
    MilterProcess(const MilterProcess&) = delete;
    MilterProcess& operator=(const MilterProcess&) = delete;

    std::uint16_t port() const { return port_; }  // inet and inet6
    pid_t pid() const { return pid_; }
    std::string socket_spec() const;  // as in the config file
    // The socketmap, as in the config file ("" when off), and where to reach it.
    std::string socketmap_spec() const;
    std::string socketmap_path() const { return dir_ + "/socketmap"; }  // unix_
    std::uint16_t socketmap_port() const { return socketmap_port_; }    // inet
    const std::string& dir() const { return dir_; }
    const std::string& config_path() const { return config_path_; }
    // The config file text for these settings and this port.
    std::string config_text(const MilterSettings& settings) const;

    // Connected and negotiated client.
    MilterClient client(ClientOptions options = {}) const;

    // Still running?
    bool alive();
    // Everything the daemon wrote to stderr so far.
    std::string log() const;
    // Waits until the log contains needle; false at the deadline.
    bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout);

    // SIGTERM, then SIGKILL after the grace time. Returns the exit status, or -1 when
    // it had to be killed (or was not running).
    int terminate(std::chrono::milliseconds grace = std::chrono::seconds(10));

    // Writes a new config file and sends SIGUSR1.
    void reload(const std::string& config_text);
    void signal(int sig);

  private:
    void start();
    void wait_ready();
    MilterClient connect(ClientOptions options) const;
    MilterSettings settings_;
    std::string dir_;
    std::string config_path_;
    std::string log_path_;
    std::uint16_t port_ = 0;
    std::uint16_t socketmap_port_ = 0;
    pid_t pid_ = -1;
    int exit_status_ = -1;
};

// Runs a command line (argv), returns its exit status and stdout+stderr.
struct CommandResult {
    int status = -1;
    std::string output;
};
CommandResult run_command(const std::vector<std::string>& argv);

// A loopback TCP port nobody listens on right now.
std::uint16_t free_port();

// "<a@b>" -> "a@b".
std::string strip_angle(std::string_view address);

// The engine the suite runs against: $BACKSTOP_TEST_ENGINE, "native" when unset.
std::string engine_under_test();

}  // namespace backstop::test
