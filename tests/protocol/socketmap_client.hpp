// A socketmap client for the tests: netstring requests out, netstring replies in,
// and the raw bytes a hostile client would send. Every wait has a deadline, as a
// hang guard (never a speed test).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace backstop::test {

class SocketmapError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class SocketmapClient {
  public:
    static SocketmapClient connect_unix(const std::string& path);
    static SocketmapClient connect_tcp(const std::string& host, std::uint16_t port);
    ~SocketmapClient();
    SocketmapClient(SocketmapClient&& other) noexcept;
    SocketmapClient& operator=(SocketmapClient&&) = delete;
    SocketmapClient(const SocketmapClient&) = delete;

    void send_raw(std::string_view bytes);
    void send_request(std::string_view name, std::string_view key);
    // The next reply's DATA; nullopt when the server closed the connection instead.
    // Throws SocketmapError on a malformed reply or at the deadline.
    std::optional<std::string> read_reply();
    // One request and its reply; throws when the server closes instead.
    std::string query(std::string_view name, std::string_view key);
    // True when the server closes the connection (EOF or reset) before the deadline
    // without sending anything more.
    bool closed_by_server();

    std::chrono::milliseconds timeout{10000};

  private:
    explicit SocketmapClient(int fd) : fd_(fd) {}
    // Reads more bytes into in_; false at EOF.
    bool fill();
    int fd_ = -1;
    std::string in_;
};

std::string netstring(std::string_view data);

}  // namespace backstop::test
