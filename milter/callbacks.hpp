// The libmilter callbacks: each copies its arguments into standard types, calls
// the connection's Session and applies what it returns. No exception crosses into
// libmilter: anything thrown is logged and the message tempfailed.
#pragma once

#include <libmilter/mfapi.h>

namespace backstop::milter {

// The filter description to pass to smfi_register.
smfiDesc* filter_description();

}  // namespace backstop::milter
