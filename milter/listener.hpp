// The milter socket: libmilter's spelling of where to listen, and opening it.
//   inet:PORT@HOST   inet:PORT (all IPv4 addresses)   inet6:PORT@HOST (brackets allowed)
//   unix:/path   local:/path
#pragma once

#include <cstdint>
#include <string>

namespace backstop::milter {

struct ListenSpec {
    enum class Kind { inet, inet6, unix_path } kind = Kind::inet;
    std::string host;  // inet/inet6: a name or an address; empty for any
    std::uint16_t port = 0;
    std::string path;  // unix
};

// Returns false with 'error' set when spec is not one of the forms above.
bool parse_listen_spec(const std::string& spec, ListenSpec& out, std::string& error);

// A non-blocking listening socket (TCP_NODELAY inherited by accepted sockets); a
// stale unix socket file is replaced. Returns -1 with 'error' set.
int open_listener(const ListenSpec& spec, std::string& error);

}  // namespace backstop::milter
