// Amazon SES notifications delivered as mail: a JSON document (sometimes wrapped in an
// SNS envelope with the inner document escaped). Just enough of JSON for its keys.
#include <string>
#include <string_view>

#include "bounce_internal.hpp"
#include "mime_text.hpp"

namespace backstop::detail {

namespace {

std::string unescape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            char n = s[++i];
            out.push_back(n == 'n' ? ' ' : n == 't' ? ' ' : n);
        } else if (s[i] != '\n') {
            out.push_back(s[i]);
        }
    }
    return out;
}

// The string value of "key":"value" at or after 'from' and before 'until'.
std::string json_string(std::string_view doc, std::string_view key, std::size_t from,
                        std::size_t until = std::string_view::npos) {
    std::string pattern = "\"";
    pattern.append(key).append("\"");
    std::size_t k = doc.find(pattern, from);
    if (k == std::string_view::npos || (until != std::string_view::npos && k >= until)) return {};
    std::size_t q = doc.find('"', doc.find(':', k + pattern.size()));
    if (q == std::string_view::npos) return {};
    std::size_t e = doc.find('"', q + 1);
    if (e == std::string_view::npos) return {};
    return std::string(doc.substr(q + 1, e - q - 1));
}

}  // namespace

bool parse_ses_json(std::string_view body, Classification& out) {
    std::size_t brace = body.find('{');
    if (brace == std::string_view::npos || body.find("notificationType") == std::string_view::npos)
        return false;
    std::string doc = unescape(body.substr(brace));
    std::string type = json_string(doc, "notificationType", 0);
    out.mta = "amazonses";
    if (type == "Bounce") {
        out.kind = MessageKind::dsn;
        std::size_t list = doc.find("\"bouncedRecipients\"");
        std::size_t end = doc.find(']', list);
        std::size_t pos = list;
        while (list != std::string::npos) {
            std::size_t obj = doc.find('{', pos);
            if (obj == std::string::npos || obj > end) break;
            std::size_t close = doc.find('}', obj);
            BounceRecipient r;
            r.address = clean_address(json_string(doc, "emailAddress", obj, close));
            r.action = json_string(doc, "action", obj, close);
            r.status = json_string(doc, "status", obj, close);
            std::string diag = json_string(doc, "diagnosticCode", obj, close);
            if (std::size_t semi = diag.find(';'); semi != std::string::npos && semi < 12)
                diag = std::string(text::trim(std::string_view(diag).substr(semi + 1)));
            r.diagnostic = one_line(diag);
            r.reply_code = find_reply_code(r.diagnostic);
            if (r.status.empty()) r.status = find_status_code(r.diagnostic);
            if (!r.address.empty()) out.recipients.push_back(std::move(r));
            if (close == std::string::npos || out.recipients.size() >= kMaxRecipients) break;
            pos = close + 1;
        }
        return true;
    }
    if (type == "Complaint") {
        out.kind = MessageKind::feedback;
        std::size_t pos = doc.find("\"complainedRecipients\"");
        while (pos != std::string::npos) {
            std::size_t k = doc.find("\"emailAddress\"", pos);
            std::size_t end = doc.find(']', pos);
            if (k == std::string::npos || k > end || out.about.size() >= kMaxRecipients) break;
            out.about.push_back(clean_address(json_string(doc, "emailAddress", k)));
            pos = k + 1;
        }
        return true;
    }
    if (type == "Delivery") {
        out.kind = MessageKind::dsn;
        std::size_t d = doc.find("\"delivery\"");
        std::size_t list = doc.find("\"recipients\"", d == std::string::npos ? 0 : d);
        std::string smtp = json_string(doc, "smtpResponse", d == std::string::npos ? 0 : d);
        if (list != std::string::npos) {
            std::size_t end = doc.find(']', list);
            std::size_t q = doc.find('"', doc.find('[', list));
            while (q != std::string::npos && q < end && out.recipients.size() < kMaxRecipients) {
                std::size_t e = doc.find('"', q + 1);
                // An unterminated string ends the list: searching on from npos + 1
                // would start over at the top of the document, forever.
                if (e == std::string::npos) break;
                BounceRecipient r;
                r.address = clean_address(doc.substr(q + 1, e - q - 1));
                r.action = "delivered";
                r.diagnostic = one_line(smtp);
                r.status = find_status_code(smtp);
                r.reply_code = find_reply_code(smtp);
                r.reason = "delivered";
                out.recipients.push_back(std::move(r));
                q = doc.find('"', e + 1);
            }
        }
        return true;
    }
    return false;
}

}  // namespace backstop::detail
