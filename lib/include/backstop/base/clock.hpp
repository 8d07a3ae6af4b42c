// Clock: the only source of "now" for the core, so tests can fix time.
#pragma once

#include <cstdint>

namespace backstop {

// Seconds since the Unix epoch.
using UnixTime = std::int64_t;

class Clock {
  public:
    virtual ~Clock() = default;
    virtual UnixTime now() const = 0;
};

class SystemClock final : public Clock {
  public:
    UnixTime now() const override;
};

class FixedClock final : public Clock {
  public:
    explicit FixedClock(UnixTime t) : t_(t) {}
    UnixTime now() const override { return t_; }
    void set(UnixTime t) { t_ = t; }
    void advance(UnixTime seconds) { t_ += seconds; }

  private:
    UnixTime t_;
};

// Whole days since the epoch; SRS and BATV both stamp days.
constexpr std::int64_t unix_day(UnixTime t) {
    return t >= 0 ? t / 86400 : (t - 86399) / 86400;
}

}  // namespace backstop
