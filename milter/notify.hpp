// systemd's readiness protocol (sd_notify(3)) without linking libsystemd: one
// datagram to the socket named in $NOTIFY_SOCKET. Nothing happens without it.
#pragma once

#include <string>

namespace backstop::milter {

// Sends e.g. "READY=1"; false when there is no $NOTIFY_SOCKET or sending failed.
bool notify_systemd(const std::string& state);

// "STOPPING=1", once per process whoever sees the stop first (our signal thread, or
// libmilter's own, which may take SIGTERM before ours).
void notify_stopping();

}  // namespace backstop::milter
