// The socketmap protocol (Postfix socketmap_table(5); Sendmail's socket map speaks
// the same): each request and each reply is a netstring, LEN:DATA, with LEN in
// decimal. A request is "NAME KEY"; a reply "OK VALUE", "NOTFOUND ", "TEMP reason"
// or "PERM reason". Bytes in, bytes out, no sockets, so it can be fuzzed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "backstop/base/clock.hpp"
#include "backstop/policy/address_maps.hpp"
#include "backstop/policy/policy.hpp"

namespace backstop::milter {

// Longest request accepted, as Postfix caps its own socketmap replies.
inline constexpr std::size_t kSocketmapMaxRequest = 100000;

// Splits a byte stream into netstrings. After an error it yields nothing more: the
// stream cannot be resynchronised, so the connection must close.
class NetstringReader {
  public:
    enum class Error {
        none,
        malformed,  // LEN not decimal digits followed by ':', or no ',' after DATA
        too_long,   // LEN above kSocketmapMaxRequest
    };

    void append(std::string_view bytes);
    // The next whole netstring's DATA; nullopt when more bytes are needed or after an
    // error. The view lives until the next append() or next().
    std::optional<std::string_view> next();

    Error error() const { return error_; }
    // What was wrong, for the log; empty without an error.
    const char* error_text() const;
    // Bytes received and not yet taken as a whole netstring.
    std::size_t pending() const { return buffer_.size() - pos_; }
    // Bytes kept in memory, returned ones included until they are dropped.
    std::size_t held() const { return buffer_.size(); }

  private:
    std::string buffer_;
    std::size_t pos_ = 0;  // start of the first netstring not yet returned
    Error error_ = Error::none;
};

// A request split at its first space. Without a space there is no key.
struct SocketmapRequest {
    std::string_view name;
    std::string_view key;
    bool well_formed = false;  // "NAME KEY" with a non-empty NAME
};
SocketmapRequest split_request(std::string_view data);

// The reply netstring for one request: the lookup's answer, or PERM for a request
// that is not NAME KEY.
struct SocketmapExchange {
    SocketmapRequest request;
    MapAnswer answer;
};
// state: the store of SRS aliases (PolicyHolder::state()); may be null.
SocketmapExchange answer_request(const Policy& policy, std::string_view data, UnixTime now,
                                 StateStore* state = nullptr);

// Appends LEN:DATA, to out.
void append_netstring(std::string& out, std::string_view data);
// Appends the reply for an answer: "OK value", "NOTFOUND ", "TEMP why", "PERM why".
void append_reply(std::string& out, const MapAnswer& answer);

}  // namespace backstop::milter
