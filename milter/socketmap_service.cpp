#include "socketmap_service.hpp"

#include <unistd.h>

#include <exception>

#include "log.hpp"
#include "privileges.hpp"

namespace backstop::milter {

std::string SocketmapService::open(const Config& config) {
    if (config.socketmap.empty()) return {};
    std::string why;
    if (!parse_listen_spec(config.socketmap, spec_, why)) return "socketmap: " + why;
    listener_ = open_listener(spec_, why);
    if (listener_ < 0) return "cannot open socketmap " + config.socketmap + ": " + why;
    if (spec_.kind == ListenSpec::Kind::unix_path) {
        if (auto e = set_socket_permissions(spec_.path, config.socket_mode, config.socket_group);
            !e.empty()) {
            close(listener_);
            listener_ = -1;
            unlink(spec_.path.c_str());
            return "socketmap: " + e;
        }
    }
    where_ = config.socketmap;
    return {};
}

void SocketmapService::start(const PolicyHolder& holder, Metrics& metrics, const Clock& clock) {
    if (listener_ < 0) return;
    server_ = std::make_unique<SocketmapServer>(holder, metrics, clock);
    const int fd = listener_;
    listener_ = -1;  // the server owns it from now on
    SocketmapServer* server = server_.get();
    thread_ = std::thread([server, fd] {
        try {
            server->serve(fd);
        } catch (const std::exception& e) {
            log(LogLevel::error, std::string("socketmap stopped: ") + e.what());
        }
    });
    log(LogLevel::info, "socketmap listening on " + where_);
}

void SocketmapService::stop() {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    if (listener_ >= 0) {
        close(listener_);
        listener_ = -1;
    }
    if (!where_.empty() && spec_.kind == ListenSpec::Kind::unix_path) unlink(spec_.path.c_str());
    where_.clear();
}

}  // namespace backstop::milter
