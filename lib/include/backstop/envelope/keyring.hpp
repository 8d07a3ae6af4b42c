// Key files: SRS secrets (postsrsd format) and BATV keys ("<digit> <secret>").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backstop/base/result.hpp"

namespace backstop {

enum class KeyFileErrc {
    missing,      // cannot stat or open
    unreadable,   // open or read failed
    insecure,     // readable by group or others
    not_regular,  // a directory, device, ...
    empty,        // no usable key in it
    bad_line,     // a line that does not parse (BATV keys)
};
using KeyFileError = Error<KeyFileErrc>;

// One secret per line, CR/LF stripped, blank lines and '#' comments skipped.
// The first secret signs, all of them verify. SRS secrets (postsrsd's format) and
// watermark keys use it.
struct SecretList {
    std::vector<std::string> secrets;
};
using SrsSecrets = SecretList;

struct BatvKey {
    int number = 0;  // 0-9, the K digit of the tag
    std::string secret;
};

// The first line signs; verification picks the key by the tag's digit.
struct BatvKeys {
    std::vector<BatvKey> keys;
    const BatvKey* find(int number) const;
};

// Parse file contents; 'origin' names the file in messages.
Result<SecretList, KeyFileError> parse_secret_list(std::string_view text, std::string_view origin);
Result<BatvKeys, KeyFileError> parse_batv_keys(std::string_view text, std::string_view origin);

// Read a key file, refusing a missing, non-regular, empty or group/world-readable one.
Result<std::string, KeyFileError> read_key_file(const std::string& path);
Result<SecretList, KeyFileError> load_secret_list(const std::string& path);
Result<BatvKeys, KeyFileError> load_batv_keys(const std::string& path);

}  // namespace backstop
