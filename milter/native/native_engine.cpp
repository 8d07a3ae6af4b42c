// The native engine behind the Engine interface: a listener (listener.hpp) served by
// Server's event loops.
#include <unistd.h>

#include "engine.hpp"
#include "listener.hpp"
#include "server.hpp"

namespace backstop::milter {

namespace {

class NativeEngine final : public Engine {
  public:
    NativeEngine(const PolicyHolder& holder, Metrics& metrics, const Clock& clock, int grace)
        : server_(holder, metrics, clock, options(grace)) {}

    std::string open(const std::string& socket_spec) override {
        ListenSpec spec;
        std::string why;
        if (!parse_listen_spec(socket_spec, spec, why)) return "socket: " + why;
        listener_ = open_listener(spec, why);
        if (listener_ < 0) return "cannot open socket " + socket_spec + ": " + why;
        return {};
    }
    void serve() override { server_.serve(listener_); }
    void stop() override { server_.stop(); }

  private:
    static ServerOptions options(int grace) {
        ServerOptions o;
        o.stop_grace_seconds = grace;
        return o;
    }
    Server server_;
    int listener_ = -1;
};

}  // namespace

std::unique_ptr<Engine> make_native_engine(const PolicyHolder& holder, Metrics& metrics,
                                           const Clock& clock, int stop_grace_seconds) {
    return std::make_unique<NativeEngine>(holder, metrics, clock, stop_grace_seconds);
}

}  // namespace backstop::milter
