// A state store that fails every call, as a store whose server is gone does: for the
// tests of on-state-error. It keeps no SRS aliases either (the base class's calls fail).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backstop/state/store.hpp"

namespace backstop::testing {

class DownStore final : public StateStore {
  public:
    Result<std::uint64_t, Failure> hit(const std::string&, UnixTime, UnixTime) override {
        return Failure{"down"};
    }
    Result<bool, Failure> record_bounce(const std::string&, const std::string&, const std::string&,
                                        UnixTime) override {
        return Failure{"down"};
    }
    Result<std::optional<BounceRecord>, Failure> bounce(const std::string&, UnixTime) override {
        return Failure{"down"};
    }
    Result<std::vector<BounceRecord>, Failure> bounces(UnixTime) override {
        return Failure{"down"};
    }
    Result<bool, Failure> forget(const std::string&) override { return Failure{"down"}; }
};

}  // namespace backstop::testing
