// Charset conversion for matching, and RFC 2047 encoded words: UTF-8 where iconv
// knows the charset, the raw bytes where it does not.
#include <iconv.h>

#include <array>
#include <string>
#include <string_view>

#include "backstop/bounce/mime.hpp"
#include "mime_text.hpp"

namespace backstop {

namespace {

// Conversion descriptors kept open per thread, a few charsets at a time. Opening and
// closing one per conversion made glibc load and unload the charset's gconv module
// each time (dlopen, dlclose, a TLB flush), which cost more than classifying the
// message. Only a cache: the conversion is the same with or without it.
class IconvCache {
  public:
    IconvCache() = default;
    IconvCache(const IconvCache&) = delete;
    IconvCache& operator=(const IconvCache&) = delete;
    ~IconvCache() {
        for (auto& e : entries_)
            if (e.cd != kNone) iconv_close(e.cd);
    }

    // An open descriptor from 'charset' to UTF-8 in its initial state, or kNone when
    // iconv does not know the charset.
    iconv_t get(const std::string& charset) {
        for (auto& e : entries_) {
            if (e.cd != kNone && e.charset == charset) {
                iconv(e.cd, nullptr, nullptr, nullptr, nullptr);  // reset the shift state
                return e.cd;
            }
        }
        iconv_t cd = iconv_open("UTF-8", charset.c_str());
        if (cd == kNone) return kNone;
        Entry& slot = entries_[next_];
        next_ = (next_ + 1) % kSize;
        if (slot.cd != kNone) iconv_close(slot.cd);
        slot.charset = charset;
        slot.cd = cd;
        return cd;
    }

    static inline const iconv_t kNone = reinterpret_cast<iconv_t>(-1);

  private:
    static constexpr std::size_t kSize = 8;
    struct Entry {
        std::string charset;
        iconv_t cd = kNone;
    };
    std::array<Entry, kSize> entries_;
    std::size_t next_ = 0;
};

}  // namespace

std::string convert_to_utf8(std::string_view charset, std::string bytes) {
    std::string cs = ascii_lower(charset);
    if (std::size_t star = cs.find('*'); star != std::string::npos)
        cs.resize(star);  // RFC 2231 lang
    if (cs == "utf-8" || cs == "us-ascii" || cs == "utf8" || cs.empty()) return bytes;
    thread_local IconvCache cache;
    iconv_t cd = cache.get(cs);
    if (cd == IconvCache::kNone) return bytes;
    std::string out(bytes.size() * 4 + 16, '\0');
    char* in = bytes.data();
    std::size_t in_left = bytes.size();
    char* o = out.data();
    std::size_t out_left = out.size();
    std::size_t rc = iconv(cd, &in, &in_left, &o, &out_left);
    if (rc == static_cast<std::size_t>(-1)) return bytes;
    out.resize(out.size() - out_left);
    return out;
}

namespace {

std::string decode_q(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '_') {
            out.push_back(' ');
        } else if (s[i] == '=' && i + 2 < s.size() && text::hex_value(s[i + 1]) >= 0 &&
                   text::hex_value(s[i + 2]) >= 0) {
            out.push_back(
                static_cast<char>(text::hex_value(s[i + 1]) * 16 + text::hex_value(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

}  // namespace

std::string decode_header_words(std::string_view value) {
    if (value.find("=?") == std::string_view::npos) return std::string(value);
    std::string out;
    std::size_t pos = 0;
    bool last_was_word = false;
    std::string pending_blank;
    while (pos < value.size()) {
        std::size_t start = value.find("=?", pos);
        if (start == std::string_view::npos) break;
        std::size_t q1 = value.find('?', start + 2);
        std::size_t q2 = q1 == std::string_view::npos ? q1 : value.find('?', q1 + 1);
        std::size_t end = q2 == std::string_view::npos ? q2 : value.find("?=", q2 + 1);
        if (end == std::string_view::npos || q2 != q1 + 2) {
            out.append(value.substr(pos, start + 2 - pos));
            pos = start + 2;
            last_was_word = false;
            continue;
        }
        std::string_view between = value.substr(pos, start - pos);
        // Blanks between two encoded words are not part of the text (RFC 2047 §6.2).
        if (!(last_was_word && text::trim(between).empty())) out.append(between);
        std::string_view charset = value.substr(start + 2, q1 - start - 2);
        char enc = ascii_lower(value[q1 + 1]);
        std::string_view payload = value.substr(q2 + 1, end - q2 - 1);
        std::string bytes = enc == 'b' ? decode_base64_lenient(payload) : decode_q(payload);
        out.append(convert_to_utf8(charset, std::move(bytes)));
        pos = end + 2;
        last_was_word = true;
    }
    if (pos < value.size()) out.append(value.substr(pos));
    return out;
}

}  // namespace backstop
