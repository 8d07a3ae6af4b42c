// Finding the parts of a bounce: the delivery-status and feedback parts, the returned
// original (enclosed or quoted inline) and the human-readable notice.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "bounce_internal.hpp"
#include "classify_internal.hpp"
#include "mime_text.hpp"

namespace backstop::detail {

namespace {

std::string strip_html(std::string_view html) {
    std::string out;
    out.reserve(html.size());
    bool in_tag = false;
    for (std::size_t i = 0; i < html.size(); ++i) {
        char c = html[i];
        if (in_tag) {
            if (c == '>') in_tag = false;
            continue;
        }
        if (c == '<') {
            // <br>, <p>, </div>... become line ends
            std::string_view rest = html.substr(i + 1, 4);
            if (istarts_with(rest, "br") || istarts_with(rest, "p") || istarts_with(rest, "/p") ||
                istarts_with(rest, "div") || istarts_with(rest, "/div") ||
                istarts_with(rest, "tr") || istarts_with(rest, "li"))
                out.push_back('\n');
            // "<a@b>" written as text in HTML is escaped; a real tag starts with a letter or '/'
            in_tag = true;
            continue;
        }
        if (c == '&') {
            static constexpr std::pair<std::string_view, char> kEntities[] = {
                {"&lt;", '<'},   {"&gt;", '>'},   {"&amp;", '&'},
                {"&quot;", '"'}, {"&nbsp;", ' '}, {"&#64;", '@'}};
            bool done = false;
            for (auto [name, ch] : kEntities) {
                if (istarts_with(html.substr(i), name)) {
                    out.push_back(ch);
                    i += name.size() - 1;
                    done = true;
                    break;
                }
            }
            if (done) continue;
        }
        out.push_back(c);
    }
    return out;
}

}  // namespace

void collect(const MimeEntity& e, Parts& p, bool top) {
    if (e.is("message/delivery-status") || e.is("message/global-delivery-status")) {
        p.dsn.push_back(&e);
        return;
    }
    if (e.is("message/feedback-report")) {
        if (!p.feedback) p.feedback = &e;
        return;
    }
    if (!e.children.empty() && !e.is_multipart()) {
        // message/rfc822 or text/rfc822-headers: the returned original.
        if (!p.original) p.original = &e.children.front();
        return;
    }
    if (e.is_multipart() && !e.children.empty()) {
        for (const auto& c : e.children) collect(c, p, false);
        return;
    }
    if (e.is_multipart()) {
        // Boundaries that never appear: the body is all we have.
        p.notice.push_back(e.body);
        return;
    }
    if (e.is("text/html")) {
        // HTML only when no plain text came first (Exchange sends both).
        if (p.notice.empty()) p.notice.push_back(p.html_text.emplace_back(strip_html(e.body)));
        return;
    }
    if (e.content_type.type.starts_with("text/") || top) {
        p.notice.push_back(e.body);
        return;
    }
}

// The inline-quoted original in the notice text, if any: its header block.
bool inline_original(std::string_view notice, HeaderList& out, std::size_t* marker_at) {
    std::size_t after = 0;
    std::size_t at = detail::find_original_marker(notice, &after);
    if (at == std::string_view::npos) return false;
    *marker_at = at;
    std::string_view rest = notice.substr(after);
    // Skip blank lines and lines that are no header ("data", SMTP replies) to the first field.
    for (int skipped = 0; skipped < 12 && !rest.empty(); ++skipped) {
        std::size_t nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        std::size_t colon = line.find(':');
        bool field = colon != std::string_view::npos && colon > 0 && line.find(' ') > colon &&
                     !text::trim(line).empty() && line.front() != ' ' && line.front() != '\t';
        if (field) break;
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
    // "> " quoted originals
    std::string unquoted;
    if (rest.starts_with("> ") || rest.starts_with(">")) {
        std::size_t pos = 0;
        while (pos < rest.size()) {
            std::size_t nl = rest.find('\n', pos);
            std::string_view line = rest.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
            if (line.starts_with("> "))
                line.remove_prefix(2);
            else if (line.starts_with(">"))
                line.remove_prefix(1);
            unquoted.append(line).push_back('\n');
            if (nl == std::string_view::npos) break;
            pos = nl + 1;
        }
        rest = unquoted;
    }
    parse_header_block(rest, out);
    return !out.fields.empty();
}

}  // namespace backstop::detail
