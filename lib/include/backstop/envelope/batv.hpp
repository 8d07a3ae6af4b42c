// Bounce Address Tag Validation, Exim-compatible prvs:
// prvs=KDDDSSSSSS=local@domain (draft-levine-smtp-batv-01).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "backstop/base/clock.hpp"
#include "backstop/base/result.hpp"
#include "backstop/envelope/keyring.hpp"

namespace backstop {

enum class BatvStatus {
    valid,          // tag verified; original holds the untagged address
    missing,        // no prvs tag in the address
    malformed,      // looks like prvs but the tag does not parse
    expired,        // signature fine, day stamp outside the lifetime window
    bad_signature,  // wrong HMAC
    unknown_key,    // no key with the tag's number
};

const char* to_string(BatvStatus status);

// Where the tag sat in the local part.
enum class BatvForm {
    none,
    standard,    // prvs=KDDDSSSSSS=local@domain
    old_order,   // prvs=local=KDDDSSSSSS@domain
    subaddress,  // local+prvs=KDDDSSSSSS@domain
};

struct BatvVerdict {
    BatvStatus status = BatvStatus::missing;
    BatvForm form = BatvForm::none;
    std::string original;  // the untagged address when a tag was parsed
    std::string message;   // why, for logs and the CLI
};

struct BatvOptions {
    int lifetime = 7;                // days
    bool accept_subaddress = false;  // accept local+prvs=TAG@domain
};

class BatvSigner {
  public:
    // Throws std::invalid_argument when there is no key or the lifetime is out of 1..999.
    BatvSigner(const BatvKeys& keys, BatvOptions options);
    ~BatvSigner();
    BatvSigner(BatvSigner&&) noexcept;
    BatvSigner& operator=(BatvSigner&&) noexcept;

    const BatvOptions& options() const { return options_; }

    // Tags local@domain with the first key; an already tagged address is re-tagged
    // from its original. Fails only for a null or malformed address.
    Result<std::string, Failure> sign(std::string_view address, UnixTime now) const;
    // Lower-level: sign with key number and day stamp given (used by tests/vectors).
    std::string sign_with(std::string_view address, int key_number, int day_stamp) const;

    BatvVerdict verify(std::string_view address, UnixTime now) const;

  private:
    struct Impl;
    BatvOptions options_;
    std::unique_ptr<Impl> impl_;
};

// Parse a tagged address without checking the signature (for normalise and logs).
struct BatvParsed {
    BatvForm form = BatvForm::none;
    int key_number = 0;
    int day_stamp = 0;
    std::string signature;  // 6 hex characters as given
    std::string original;   // local@domain without the tag
};
// status is missing or malformed when it did not parse as a tag.
Result<BatvParsed, BatvStatus> parse_batv(std::string_view address, bool accept_subaddress);

}  // namespace backstop
