// Dropping root after the socket is open.
#pragma once

#include <string>

namespace backstop::milter {

// Switches to user (its primary group and supplementary groups); returns an error
// message, empty on success.
std::string drop_privileges(const std::string& user);

// chmod/chgrp of a unix socket path; returns an error message, empty on success.
std::string set_socket_permissions(const std::string& path, const std::string& mode,
                                   const std::string& group);

}  // namespace backstop::milter
