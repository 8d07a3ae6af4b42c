// The optional metrics endpoint: HTTP GET /metrics in Prometheus text format on
// stats-socket, and the client side for `backstop-milter --stats`.
#pragma once

#include <string>

#include "backstop/base/metrics.hpp"

namespace backstop::milter {

// The daemon's counters (libmilter callbacks have no user pointer to carry them).
Metrics& daemon_metrics();

// Binds inet:PORT@IP and serves from a background thread; returns an error message,
// empty on success.
std::string start_stats_server(const std::string& spec);

// Fetches /metrics from a running daemon; returns false with 'out' set to the reason.
bool fetch_stats(const std::string& spec, std::string& out);

}  // namespace backstop::milter
