#include "engine.hpp"

#include <chrono>
#include <thread>

#include "log.hpp"

namespace backstop::milter {

bool may_wait_on_lookups(const Config& c) {
    return c.srs_spf_check || c.state != "memory";
}

void let_messages_finish(const std::function<std::size_t()>& under_way, int grace_seconds,
                         const std::string& no_longer) {
    log(LogLevel::info, "no longer accepting " + no_longer + "; " + std::to_string(under_way()) +
                            " message(s) under way");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_seconds);
    while (under_way() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (const std::size_t left = under_way(); left > 0) {
        log(LogLevel::warning, "stopping with " + std::to_string(left) +
                                   " message(s) under way: the MTA tempfails them");
    }
}

}  // namespace backstop::milter
