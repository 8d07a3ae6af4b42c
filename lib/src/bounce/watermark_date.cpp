// RFC 5322 dates for MailScanner watermarks, which hash the Date header as epoch
// seconds (Perl's Date::Parse). Accepts the obsolete forms: no weekday, two-digit
// years, named zones, no seconds.
#include <array>
#include <cctype>
#include <optional>
#include <string_view>

#include "backstop/bounce/watermark.hpp"
#include "mime_text.hpp"

namespace backstop {

namespace {

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Cursor {
    std::string_view s;
    std::size_t i = 0;
    void skip() {
        while (i < s.size() && (std::isspace(static_cast<unsigned char>(s[i])) || s[i] == ',')) ++i;
    }
    bool number(int& out, int max_digits) {
        skip();
        int n = 0, digits = 0;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) &&
               digits < max_digits) {
            n = n * 10 + (s[i++] - '0');
            ++digits;
        }
        out = n;
        return digits > 0;
    }
    std::string_view word() {
        skip();
        std::size_t b = i;
        while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
        return s.substr(b, i - b);
    }
};

}  // namespace

std::optional<UnixTime> parse_rfc5322_date(std::string_view text) {
    static constexpr std::array<std::string_view, 12> kMonths = {
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
    Cursor c{text::trim(text)};
    c.skip();
    // Optional weekday.
    if (c.i < c.s.size() && std::isalpha(static_cast<unsigned char>(c.s[c.i]))) c.word();
    int day = 0, year = 0, hh = 0, mm = 0, ss = 0;
    if (!c.number(day, 2)) return std::nullopt;
    std::string month_name = ascii_lower(c.word());
    int month = 0;
    for (std::size_t k = 0; k < kMonths.size(); ++k)
        if (month_name.starts_with(kMonths[k])) month = static_cast<int>(k) + 1;
    if (month == 0 || day < 1 || day > 31) return std::nullopt;
    std::size_t year_at = (c.skip(), c.i);
    if (!c.number(year, 4)) return std::nullopt;
    std::size_t year_digits = c.i - year_at;
    if (year_digits <= 2)
        year += year < 50 ? 2000 : 1900;
    else if (year_digits == 3)
        year += 1900;
    if (!c.number(hh, 2)) return std::nullopt;
    if (c.i >= c.s.size() || c.s[c.i] != ':') return std::nullopt;
    ++c.i;
    if (!c.number(mm, 2)) return std::nullopt;
    if (c.i < c.s.size() && c.s[c.i] == ':') {
        ++c.i;
        if (!c.number(ss, 2)) return std::nullopt;
    }
    if (hh > 23 || mm > 59 || ss > 60) return std::nullopt;
    c.skip();
    int offset = 0;
    if (c.i < c.s.size() && (c.s[c.i] == '+' || c.s[c.i] == '-')) {
        int sign = c.s[c.i] == '-' ? -1 : 1;
        ++c.i;
        int hhmm = 0;
        if (!c.number(hhmm, 4)) return std::nullopt;
        offset = sign * ((hhmm / 100) * 3600 + (hhmm % 100) * 60);
    } else {
        struct Zone {
            std::string_view name;
            int hours;
        };
        static constexpr Zone kZones[] = {{"ut", 0},   {"utc", 0},  {"gmt", 0},  {"z", 0},
                                          {"est", -5}, {"edt", -4}, {"cst", -6}, {"cdt", -5},
                                          {"mst", -7}, {"mdt", -6}, {"pst", -8}, {"pdt", -7},
                                          {"jst", 9},  {"cet", 1},  {"cest", 2}, {"bst", 1}};
        std::string zone = ascii_lower(c.word());
        for (const auto& z : kZones)
            if (zone == z.name) offset = z.hours * 3600;
    }
    std::int64_t days =
        days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    return days * 86400 + hh * 3600 + mm * 60 + ss - offset;
}

}  // namespace backstop
