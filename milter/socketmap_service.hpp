// The socketmap as the daemon runs it: its socket opened with the milter's, before
// privileges are dropped; accepted in a thread of its own (each connection then gets
// one, socketmap_server.hpp); stopped with the milter, and its unix socket file
// removed.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "backstop/base/clock.hpp"
#include "backstop/base/metrics.hpp"
#include "backstop/policy/config.hpp"
#include "listener.hpp"
#include "policy_holder.hpp"
#include "socketmap_server.hpp"

namespace backstop::milter {

class SocketmapService {
  public:
    SocketmapService() = default;
    ~SocketmapService() { stop(); }
    SocketmapService(const SocketmapService&) = delete;
    SocketmapService& operator=(const SocketmapService&) = delete;

    // Opens config.socketmap (nothing when it is empty); a unix socket gets
    // socket-mode and socket-group. Returns an error message, empty on success.
    std::string open(const Config& config);
    // Accepts in its own thread; logs "socketmap listening on ...".
    void start(const PolicyHolder& holder, Metrics& metrics, const Clock& clock);
    // Stops serving, waits for the thread, removes the unix socket file.
    void stop();

  private:
    std::string where_;
    ListenSpec spec_;
    int listener_ = -1;
    std::unique_ptr<SocketmapServer> server_;
    std::thread thread_;
};

}  // namespace backstop::milter
