// Sender Rewriting Scheme in the Shevek format shared by Mail::SRS, libsrs2,
// pysrs and postsrsd: SRS0 forward, guarded SRS1 re-forwarding, reverse.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backstop/base/clock.hpp"
#include "backstop/base/encoding.hpp"
#include "backstop/base/result.hpp"
#include "backstop/envelope/keyring.hpp"

namespace backstop {

enum class SrsErrc {
    bad_address,     // the input is not an envelope address
    null_sender,     // <> is never rewritten
    not_srs,         // reverse: no SRS0/SRS1 prefix
    no_hash,         // reverse: the hash field is missing or empty
    hash_too_short,  // reverse: shorter than hash-minimum
    no_timestamp,    // reverse: SRS0 without a 2-character time stamp
    bad_timestamp,   // reverse: time stamp not base32
    out_of_date,     // reverse: older than max-age, or from the future
    hash_invalid,    // reverse: no secret gives this hash
    malformed,       // reverse: missing host or user field
    too_long,        // forward: the SRS local part would exceed 64 octets (RFC 5321)
};
using SrsError = Error<SrsErrc>;

const char* to_string(SrsErrc code);

struct SrsOptions {
    std::string domain;    // our SRS domain (the part after @ of every rewrite)
    int hash_length = 4;   // characters of base64 emitted
    int hash_minimum = 4;  // fewest characters accepted on reverse
    char separator = '=';  // first separator after SRS0/SRS1: '=', '+' or '-'
    int max_age = 21;      // days an SRS0 address stays valid
    Base64Alphabet alphabet = Base64Alphabet::standard;  // emitted; both accepted
};

// What forward() did, so callers can log it.
enum class SrsForwardKind {
    srs0,       // plain sender -> SRS0
    srs1,       // SRS0/SRS1 from elsewhere -> SRS1
    unchanged,  // already at our SRS domain (ours, or a local sender)
};

struct SrsForward {
    std::string address;
    SrsForwardKind kind;
};

struct SrsReverse {
    std::string address;
    bool was_srs1 = false;
};

class SrsCodec {
  public:
    // Throws std::invalid_argument for options that cannot work (start-up error).
    SrsCodec(const SrsSecrets& secrets, SrsOptions options);
    ~SrsCodec();
    SrsCodec(SrsCodec&&) noexcept;
    SrsCodec& operator=(SrsCodec&&) noexcept;

    const SrsOptions& options() const { return options_; }

    Result<SrsForward, SrsError> forward(std::string_view sender, UnixTime now) const;
    Result<SrsReverse, SrsError> reverse(std::string_view address, UnixTime now) const;

    // True when the address is SRS0/SRS1 and reverses with one of our secrets.
    bool is_ours(std::string_view address, UnixTime now) const;

    // Validation of the option values, for config checks; empty when fine.
    static std::string check_options(const SrsOptions& options);

  private:
    struct Impl;
    SrsOptions options_;
    std::unique_ptr<Impl> impl_;
};

// Keyless decode used by normalisation: SRS0 -> original address, SRS1 -> the SRS0
// inside it. nullopt-like failure when the local part is not SRS.
Result<std::string, SrsError> srs_decode_unverified(std::string_view local_part);

// The SRS time stamp of a given time (2 base32 characters).
std::string srs_timestamp(UnixTime now);

}  // namespace backstop
