// The part of backstop-milter that speaks the milter protocol to the MTA. Two engines
// serve the same Session with the same replies (replies.hpp): native (event loops and
// a worker pool, milter/native/) and libmilter (Sendmail's library, a thread per
// connection, milter/libmilter/). main.cpp picks one with [general] engine.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "backstop/base/clock.hpp"
#include "backstop/base/metrics.hpp"
#include "backstop/policy/config.hpp"
#include "policy_holder.hpp"

namespace backstop::milter {

class Engine {
  public:
    virtual ~Engine() = default;
    // Opens the MTA's socket (libmilter syntax), while the process may still be root.
    // An error text, or empty.
    virtual std::string open(const std::string& socket_spec) = 0;
    // Serves until stop(); then stops accepting and lets messages under way finish,
    // for at most stop_grace_seconds. Throws when it cannot serve at all.
    virtual void serve() = 0;
    // From any thread but a signal handler.
    virtual void stop() = 0;
};

// Whether a command may wait on something outside the process (SPF lookups, an
// SQLite or Redis store): the native engine then runs it on a worker, and both send
// progress while an end of message waits.
bool may_wait_on_lookups(const Config& c);

// At a stop, both engines alike: logs "no longer accepting NO_LONGER", waits until
// under_way() is 0 or grace_seconds have passed, and logs what it leaves.
void let_messages_finish(const std::function<std::size_t()>& under_way, int grace_seconds,
                         const std::string& no_longer);

std::unique_ptr<Engine> make_native_engine(const PolicyHolder& holder, Metrics& metrics,
                                           const Clock& clock, int stop_grace_seconds);
std::unique_ptr<Engine> make_libmilter_engine(const PolicyHolder& holder, Metrics& metrics,
                                              const Clock& clock, int stop_grace_seconds);

}  // namespace backstop::milter
