#include "backstop/policy/spf.hpp"

// libspf2's headers assume the socket types are already declared.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
extern "C" {
#include <spf2/spf.h>
}

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "backstop/base/ascii.hpp"
#include "backstop/envelope/address.hpp"

namespace backstop {

const char* to_string(SpfVerdict v) {
    switch (v) {
        case SpfVerdict::pass:
            return "pass";
        case SpfVerdict::fail:
            return "fail";
        case SpfVerdict::softfail:
            return "softfail";
        case SpfVerdict::neutral:
            return "neutral";
        case SpfVerdict::none:
            return "none";
        case SpfVerdict::temperror:
            return "temperror";
        case SpfVerdict::permerror:
            return "permerror";
        case SpfVerdict::timeout:
            return "timeout";
    }
    return "temperror";
}

namespace {

SpfVerdict evaluate(const std::string& relay, const std::string& sender) {
    SPF_server_t* server = SPF_server_new(SPF_DNS_CACHE, 0);
    if (!server) return SpfVerdict::temperror;
    SpfVerdict out = SpfVerdict::temperror;
    SPF_request_t* req = SPF_request_new(server);
    bool addr_ok = relay.find(':') == std::string::npos
                       ? SPF_request_set_ipv4_str(req, relay.c_str()) == SPF_E_SUCCESS
                       : SPF_request_set_ipv6_str(req, relay.c_str()) == SPF_E_SUCCESS;
    SPF_response_t* resp = nullptr;
    if (addr_ok && SPF_request_set_env_from(req, sender.c_str()) == 0) {
        SPF_request_query_mailfrom(req, &resp);
        if (resp) {
            switch (SPF_response_result(resp)) {
                case SPF_RESULT_PASS:
                    out = SpfVerdict::pass;
                    break;
                case SPF_RESULT_FAIL:
                    out = SpfVerdict::fail;
                    break;
                case SPF_RESULT_SOFTFAIL:
                    out = SpfVerdict::softfail;
                    break;
                case SPF_RESULT_NEUTRAL:
                    out = SpfVerdict::neutral;
                    break;
                case SPF_RESULT_NONE:
                    out = SpfVerdict::none;
                    break;
                case SPF_RESULT_PERMERROR:
                    out = SpfVerdict::permerror;
                    break;
                default:
                    out = SpfVerdict::temperror;
                    break;
            }
        }
    }
    if (resp) SPF_response_free(resp);
    SPF_request_free(req);
    SPF_server_free(server);
    return out;
}

// What one evaluation thread reports back; shared so an abandoned thread can still write.
struct Pending {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    SpfVerdict verdict = SpfVerdict::temperror;
};

class Libspf2Checker final : public SpfChecker {
  public:
    explicit Libspf2Checker(SpfOptions o)
        : o_(std::move(o)), in_flight_(std::make_shared<std::atomic<std::size_t>>(0)) {}

    SpfVerdict check(std::string_view sender, UnixTime now) const override {
        std::size_t at = sender.rfind('@');
        if (at == std::string_view::npos) return SpfVerdict::none;
        std::string domain = ascii_lower(sender.substr(at + 1));
        if (auto hit = cached(domain, now)) return *hit;
        if (*in_flight_ >= o_.max_in_flight)
            return SpfVerdict::timeout;  // DNS is clearly in trouble

        auto pending = std::make_shared<Pending>();
        auto counter = in_flight_;
        ++*counter;
        std::thread([pending, counter, relay = o_.relay_address, s = std::string(sender)] {
            SpfVerdict v = evaluate(relay, s);
            {
                std::lock_guard<std::mutex> lock(pending->m);
                pending->verdict = v;
                pending->done = true;
            }
            pending->cv.notify_all();
            --*counter;
        }).detach();

        std::unique_lock<std::mutex> lock(pending->m);
        if (!pending->cv.wait_for(lock, std::chrono::milliseconds(o_.timeout_ms),
                                  [&] { return pending->done; })) {
            return SpfVerdict::timeout;
        }
        SpfVerdict v = pending->verdict;
        lock.unlock();
        // Temporary failures are not cached: the next message asks again.
        if (v != SpfVerdict::temperror) remember(domain, v, now);
        return v;
    }

  private:
    std::optional<SpfVerdict> cached(const std::string& domain, UnixTime now) const {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        auto it = cache_.find(domain);
        if (it == cache_.end() || it->second.second < now) return std::nullopt;
        return it->second.first;
    }

    void remember(const std::string& domain, SpfVerdict v, UnixTime now) const {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        if (cache_.size() >= o_.cache_entries) cache_.clear();  // crude but bounded
        cache_[domain] = {v, now + o_.cache_seconds};
    }

    SpfOptions o_;
    std::shared_ptr<std::atomic<std::size_t>> in_flight_;
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::pair<SpfVerdict, UnixTime>> cache_;
};

}  // namespace

std::shared_ptr<SpfChecker> make_libspf2_checker(const SpfOptions& options) {
    return std::make_shared<Libspf2Checker>(options);
}

}  // namespace backstop
