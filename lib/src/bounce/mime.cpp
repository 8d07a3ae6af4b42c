// A small MIME reader for bounces (see mime.hpp). Its own code rather than GMime:
// docs/CLASSIFY.md has the measurement (GMime's parse alone costs more than our
// whole classification), and a bounce reader must accept what GMime rejects.
#include "backstop/bounce/mime.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "mime_text.hpp"

namespace backstop {

namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim_blank(std::string_view s) {
    while (!s.empty() && (is_blank(s.front()) || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (is_blank(s.back()) || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

// A header field name: printable ASCII without ':' or blanks.
bool looks_like_field_name(std::string_view name) {
    if (name.empty() || name.size() > 76) return false;
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 32 || u >= 127 || c == ':') return false;
    }
    return true;
}

}  // namespace

const std::string* HeaderList::find(std::string_view name) const {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return &f.value;
    return nullptr;
}

std::string_view HeaderList::get(std::string_view name) const {
    const std::string* v = find(name);
    return v ? std::string_view(*v) : std::string_view();
}

std::size_t HeaderList::count(std::string_view name) const {
    std::size_t n = 0;
    for (const auto& f : fields)
        if (iequals(f.name, name)) ++n;
    return n;
}

std::string_view ContentType::param(std::string_view name) const {
    for (const auto& [k, v] : params)
        if (k == name) return v;
    return {};
}

ContentType parse_content_type(std::string_view value) {
    ContentType ct;
    std::size_t semi = value.find(';');
    std::string_view type = trim_blank(value.substr(0, semi));
    if (type.find('/') != std::string_view::npos) {
        ct.type = ascii_lower(type);
        // "text/plain (comment)" and similar junk after the type
        std::size_t junk = ct.type.find_first_of(" \t(\"");
        if (junk != std::string::npos) ct.type.resize(junk);
    }
    if (semi == std::string_view::npos) {
        // "multipart/report boundary=x" without the ';'
        std::size_t blank = value.find_first_of(" \t");
        if (blank == std::string_view::npos) return ct;
        semi = blank;
    }
    // Parameters, separated by ';' or (in broken mail) only by blanks.
    std::size_t pos = semi + 1;
    while (pos < value.size()) {
        while (pos < value.size() && (is_blank(value[pos]) || value[pos] == ';')) ++pos;
        std::size_t eq = value.find('=', pos);
        if (eq == std::string_view::npos) break;
        std::string key = ascii_lower(trim_blank(value.substr(pos, eq - pos)));
        std::size_t v = eq + 1;
        while (v < value.size() && is_blank(value[v])) ++v;
        std::string val;
        if (v < value.size() && value[v] == '"') {
            ++v;
            while (v < value.size() && value[v] != '"') {
                if (value[v] == '\\' && v + 1 < value.size()) ++v;
                val.push_back(value[v++]);
            }
            pos = v + 1;
        } else {
            std::size_t end = v;
            while (end < value.size() && value[end] != ';' && !is_blank(value[end])) ++end;
            val = std::string(value.substr(v, end - v));
            pos = end;
        }
        // RFC 2231 "name*=charset''value": keep the value, drop the charset.
        if (!key.empty() && key.back() == '*') {
            key.pop_back();
            std::size_t q = val.find("''");
            if (q != std::string::npos) val.erase(0, q + 2);
        }
        if (!key.empty() && key.find_first_of(" \t") == std::string::npos)
            ct.params.emplace_back(std::move(key), std::move(val));
    }
    return ct;
}

std::string normalize_line_ends(std::string_view data, std::size_t max_bytes) {
    if (data.size() > max_bytes) data = data.substr(0, max_bytes);
    std::string out;
    out.reserve(data.size());
    const char* p = data.data();
    const char* end = p + data.size();
    while (p < end) {
        const void* cr = std::memchr(p, '\r', static_cast<std::size_t>(end - p));
        if (!cr) {
            out.append(p, end);
            break;
        }
        const char* c = static_cast<const char*>(cr);
        out.append(p, c);
        out.push_back('\n');
        p = c + 1;
        if (p < end && *p == '\n') ++p;
    }
    return out;
}

std::size_t parse_header_block(std::string_view text, HeaderList& out) {
    std::size_t pos = 0;
    // An mbox "From " line ahead of the headers.
    if (text.starts_with("From ")) {
        std::size_t nl = text.find('\n');
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
    }
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        std::size_t line_end = nl == std::string_view::npos ? text.size() : nl;
        std::string_view line = text.substr(pos, line_end - pos);
        std::size_t next = nl == std::string_view::npos ? text.size() : nl + 1;
        if (trim_blank(line).empty()) return next;  // the blank line ends the block
        if (is_blank(line.front())) {
            if (out.fields.empty()) return pos;  // body text that starts indented
            std::string& v = out.fields.back().value;
            if (v.size() < 16384) {
                std::string_view cont = trim_blank(line);
                if (!v.empty()) v.push_back(' ');
                v.append(cont);
            }
            pos = next;
            continue;
        }
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos ||
            !looks_like_field_name(trim_blank(line.substr(0, colon)))) {
            // Not a header: the body starts here (no blank line before it).
            return pos;
        }
        if (out.fields.empty()) out.fields.reserve(24);  // a bounce's headers, mostly
        out.fields.push_back(HeaderField{std::string(trim_blank(line.substr(0, colon))),
                                         std::string(trim_blank(line.substr(colon + 1)))});
        pos = next;
    }
    return text.size();
}

std::string decode_base64_lenient(std::string_view text) {
    static constexpr auto kTable = [] {
        std::array<std::int8_t, 256> t{};
        for (auto& v : t) v = -1;
        const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < 64; ++i)
            t[static_cast<unsigned char>(a[i])] = static_cast<std::int8_t>(i);
        t['-'] = 62;
        t['_'] = 63;
        return t;
    }();
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        if (c == '=') {
            // Padding ends a group; a new group may follow in broken encoders.
            acc = 0;
            bits = 0;
            continue;
        }
        int v = kTable[static_cast<unsigned char>(c)];
        if (v < 0) continue;  // line ends, blanks, junk
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

std::string decode_quoted_printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        // Runs without '=' are copied whole.
        const void* eq = std::memchr(text.data() + i, '=', text.size() - i);
        std::size_t at =
            eq ? static_cast<std::size_t>(static_cast<const char*>(eq) - text.data()) : text.size();
        out.append(text.substr(i, at - i));
        if (at >= text.size()) break;
        i = at;
        if (i + 1 < text.size() && text[i + 1] == '\n') {  // soft line break
            i += 2;
            continue;
        }
        if (i + 2 < text.size() && text::hex_value(text[i + 1]) >= 0 &&
            text::hex_value(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(text::hex_value(text[i + 1]) * 16 +
                                            text::hex_value(text[i + 2])));
            i += 3;
            continue;
        }
        // "=  \n": a soft break with trailing blanks
        std::size_t j = i + 1;
        while (j < text.size() && is_blank(text[j])) ++j;
        if (j < text.size() && text[j] == '\n') {
            i = j + 1;
            continue;
        }
        out.push_back('=');
        ++i;
    }
    return out;
}

namespace {

class Reader {
  public:
    explicit Reader(const MimeLimits& limits) : limits_(limits) {}

    void parse_entity(std::string_view text, MimeEntity& e, int depth, bool headers_only) {
        ++parts_;
        std::size_t body_at = parse_header_block(text, e.headers);
        std::string_view body = text.substr(std::min(body_at, text.size()));
        e.headers_only = headers_only;
        if (headers_only) return;
        if (const std::string* ct = e.headers.find("Content-Type"))
            e.content_type = parse_content_type(*ct);
        fill_body(body, e, depth);
    }

    // A body whose headers are known (the entity's own, or a default for parts).
    void fill_body(std::string_view body, MimeEntity& e, int depth) {
        std::string enc = ascii_lower(trim_blank(e.headers.get("Content-Transfer-Encoding")));
        if (e.is_multipart() && depth < limits_.max_depth) {
            split_multipart(body, e, depth);
            if (!e.children.empty()) return;
        }
        if (!limits_.decode_other_parts && depth > 0 && !e.is_multipart() &&
            !e.content_type.type.starts_with("text/") &&
            !e.content_type.type.starts_with("message/"))
            return;
        std::string decoded;
        if (enc == "base64")
            decoded = decode_base64_lenient(body);
        else if (enc == "quoted-printable")
            decoded = decode_quoted_printable(body);
        else
            decoded = std::string(body);
        if (decoded.find('\r') != std::string::npos)
            decoded = normalize_line_ends(decoded, decoded.size());

        bool enclosed = e.is("message/rfc822") || e.is("message/global") ||
                        e.is("message/rfc822-headers") || e.is("text/rfc822-headers") ||
                        e.is("message/global-headers");
        if (enclosed && depth < limits_.max_depth && parts_ < limits_.max_parts) {
            bool only_headers = e.content_type.type.ends_with("headers");
            e.children.emplace_back();
            parse_entity(decoded, e.children.back(), depth + 1, only_headers);
            if (only_headers) {
                // Keep whatever follows the headers (some MTAs add the body too).
                e.body = std::move(decoded);
            }
            return;
        }
        // Text is matched in UTF-8 (ISO-2022-JP, Shift_JIS, Latin-1 notices, ...).
        if (e.content_type.type.starts_with("text/"))
            if (std::string_view cs = e.content_type.param("charset"); !cs.empty())
                decoded = convert_to_utf8(cs, std::move(decoded));
        e.body = std::move(decoded);
    }

  private:
    static bool is_boundary_line(std::string_view text, std::size_t at, std::string_view boundary,
                                 bool* closing, std::size_t* next) {
        // at points to "--"
        std::size_t p = at + 2 + boundary.size();
        bool close = text.substr(p, 2) == "--";
        if (close) p += 2;
        while (p < text.size() && text[p] != '\n' && is_blank(text[p])) ++p;
        if (p < text.size() && text[p] != '\n') return false;  // boundary is a prefix of more text
        *closing = close;
        *next = p < text.size() ? p + 1 : text.size();
        return true;
    }

    std::size_t find_delim(std::string_view body, const std::string& delim, std::size_t from) {
        std::size_t p = body.find(delim, from);
        return p == std::string_view::npos ? p : p + 1;  // at the "--"
    }

    // Splits on "--boundary" lines; false when there is none.
    bool split_on(std::string_view body, std::string_view boundary, MimeEntity& e, int depth) {
        std::string delim = "\n--";
        delim.append(boundary);
        std::size_t part_start = std::string_view::npos;
        bool found_any = false;
        std::size_t at =
            body.starts_with(std::string_view(delim).substr(1)) ? 0 : find_delim(body, delim, 0);
        while (at != std::string_view::npos) {
            bool closing = false;
            std::size_t next = 0;
            std::size_t search_from = at;
            if (is_boundary_line(body, at, boundary, &closing, &next)) {
                found_any = true;
                // The line end before the delimiter belongs to the delimiter.
                if (part_start != std::string_view::npos && at > part_start)
                    add_part(body.substr(part_start, at - 1 - part_start), e, depth);
                else if (part_start != std::string_view::npos)
                    add_part({}, e, depth);
                if (closing || parts_ >= limits_.max_parts) return true;
                part_start = next;
                search_from = next > 0 ? next - 1 : 0;
            }
            at = find_delim(body, delim, search_from);
        }
        // Truncated or missing closing delimiter: the last part runs to the end.
        if (part_start != std::string_view::npos && part_start < body.size())
            add_part(body.substr(part_start), e, depth);
        return found_any;
    }

    void add_part(std::string_view text, MimeEntity& parent, int depth) {
        parent.children.emplace_back();
        MimeEntity& child = parent.children.back();
        // multipart/digest parts default to message/rfc822
        if (parent.is("multipart/digest")) child.content_type.type = "message/rfc822";
        parse_entity_in_part(text, child, depth + 1);
    }

    void parse_entity_in_part(std::string_view text, MimeEntity& e, int depth) {
        ++parts_;
        std::size_t body_at = parse_header_block(text, e.headers);
        if (const std::string* ct = e.headers.find("Content-Type"))
            e.content_type = parse_content_type(*ct);
        fill_body(text.substr(std::min(body_at, text.size())), e, depth);
    }

    void split_multipart(std::string_view body, MimeEntity& e, int depth) {
        std::string boundary(e.content_type.param("boundary"));
        if (!boundary.empty() && split_on(body, boundary, e, depth)) return;
        // Missing or wrong boundary: take the first "--xxx" line that recurs.
        std::size_t pos = 0;
        while (pos < body.size()) {
            std::size_t nl = body.find('\n', pos);
            std::string_view line = body.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
            if (line.size() > 4 && line.starts_with("--") && line.size() < 200) {
                std::string_view guess = trim_blank(line.substr(2));
                if (guess.ends_with("--")) guess.remove_suffix(2);
                if (!guess.empty() &&
                    body.find(line, pos + line.size()) != std::string_view::npos) {
                    std::string g(guess);
                    e.children.clear();
                    if (split_on(body, g, e, depth)) return;
                }
            }
            if (nl == std::string_view::npos) break;
            pos = nl + 1;
        }
    }

    const MimeLimits& limits_;
    std::size_t parts_ = 0;
};

}  // namespace

MimeMessage parse_mime(std::string_view data, const MimeLimits& limits) {
    MimeMessage m;
    m.truncated = data.size() > limits.max_bytes;
    std::string text = normalize_line_ends(data, limits.max_bytes);
    Reader r(limits);
    r.parse_entity(text, m.root, 0, false);
    return m;
}

}  // namespace backstop
