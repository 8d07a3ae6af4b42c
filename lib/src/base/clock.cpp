#include "backstop/base/clock.hpp"

#include <chrono>

namespace backstop {

UnixTime SystemClock::now() const {
    using namespace std::chrono;
    return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace backstop
