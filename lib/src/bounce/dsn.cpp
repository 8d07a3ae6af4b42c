// RFC 3464 field blocks. Real reports break the rules (no blank lines between
// recipients, fields folded anyhow, base64 bodies), so blocks are cut on recipient
// fields as well as on blank lines.
#include "backstop/bounce/dsn.hpp"

#include "mime_text.hpp"

namespace backstop {

namespace {

bool is_recipient_field(std::string_view name) {
    return iequals(name, "Final-Recipient") || iequals(name, "Original-Recipient") ||
           iequals(name, "X-Actual-Recipient");
}

std::string strip_type(std::string_view value) {
    std::size_t semi = value.find(';');
    if (semi != std::string_view::npos && semi < 24) value = value.substr(semi + 1);
    return std::string(text::trim(value));
}

DsnRecipientFields make_recipient(HeaderList fields) {
    DsnRecipientFields r;
    r.final_recipient = dsn_address(fields.get("Final-Recipient"));
    r.original_recipient = dsn_address(fields.get("Original-Recipient"));
    if (r.final_recipient.empty())
        r.final_recipient = dsn_address(fields.get("X-Actual-Recipient"));
    std::string action = ascii_lower(text::trim(fields.get("Action")));
    std::size_t cut = action.find_first_of(" (;");
    if (cut != std::string::npos) action.resize(cut);
    r.action = action;
    r.status = std::string(text::trim(fields.get("Status")));
    std::string_view diag = fields.get("Diagnostic-Code");
    std::size_t semi = diag.find(';');
    if (semi != std::string_view::npos && semi < 24) {
        r.diagnostic_type = ascii_lower(text::trim(diag.substr(0, semi)));
        diag = diag.substr(semi + 1);
    }
    r.diagnostic = std::string(text::trim(diag));
    r.remote_mta = strip_type(fields.get("Remote-MTA"));
    r.fields = std::move(fields);
    return r;
}

}  // namespace

std::string dsn_address(std::string_view value) {
    std::string v = strip_type(value);
    // Comments and display decorations: "a@b (comment)", "<a@b>", "\"a@b\""
    std::size_t lt = v.find('<');
    if (lt != std::string::npos) {
        std::size_t gt = v.find('>', lt);
        v = v.substr(lt + 1, gt == std::string::npos ? std::string::npos : gt - lt - 1);
    }
    std::size_t paren = v.find(" (");
    if (paren != std::string::npos) v.resize(paren);
    std::string_view t = text::trim(v);
    bool quoted_local = t.starts_with("\"") && t.find("\"@") != std::string_view::npos;
    if (!quoted_local) {
        while (!t.empty() && (t.front() == '"' || t.front() == '\'')) t.remove_prefix(1);
        while (!t.empty() &&
               (t.back() == '"' || t.back() == '\'' || t.back() == '.' || t.back() == ';'))
            t.remove_suffix(1);
    }
    std::size_t sp = t.find_first_of(" \t");
    if (sp != std::string_view::npos && t.find('@') != std::string_view::npos && t.find('@') < sp)
        t = t.substr(0, sp);
    return std::string(t);
}

DsnReport parse_delivery_status(std::string_view body) {
    DsnReport report;
    bool first_block = true;
    std::size_t pos = 0;
    while (pos < body.size()) {
        // Skip blank lines between blocks.
        while (pos < body.size() && (body[pos] == '\n' || body[pos] == ' ' || body[pos] == '\t')) {
            std::size_t nl = body.find('\n', pos);
            std::string_view line = body.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
            if (!text::trim(line).empty()) break;
            pos = nl == std::string_view::npos ? body.size() : nl + 1;
        }
        if (pos >= body.size()) break;
        HeaderList block;
        std::size_t next = parse_header_block(body.substr(pos), block);
        if (next == 0) {
            // A line that is no field: skip it.
            std::size_t nl = body.find('\n', pos);
            pos = nl == std::string_view::npos ? body.size() : nl + 1;
            continue;
        }
        pos += next;
        // Cut the block where a recipient field starts a new recipient.
        std::vector<HeaderList> groups(1);
        for (auto& f : block.fields) {
            bool starts_new = false;
            if (is_recipient_field(f.name)) {
                // A recipient field starts a new recipient when the current one already
                // has it, or already has its Status (no blank line between recipients).
                const HeaderList& cur = groups.back();
                bool has_any = cur.has("Final-Recipient") || cur.has("Original-Recipient") ||
                               cur.has("X-Actual-Recipient");
                starts_new = cur.has(f.name) || (has_any && cur.has("Status"));
            }
            if (starts_new) groups.emplace_back();
            groups.back().fields.push_back(std::move(f));
        }
        for (auto& g : groups) {
            bool has_recipient = g.has("Final-Recipient") || g.has("Original-Recipient") ||
                                 g.has("X-Actual-Recipient");
            if (has_recipient) {
                // Fields of the per-message block that precede the first recipient in
                // the same block (no blank line) stay per-message.
                report.recipients.push_back(make_recipient(std::move(g)));
            } else if (first_block || report.recipients.empty()) {
                for (auto& f : g.fields) report.per_message.fields.push_back(std::move(f));
            } else if (!report.recipients.empty()) {
                // Stray fields after a recipient (a blank line inside its block).
                auto& last = report.recipients.back();
                for (auto& f : g.fields) {
                    if (last.action.empty() && iequals(f.name, "Action"))
                        last.action = ascii_lower(text::trim(f.value));
                    else if (last.status.empty() && iequals(f.name, "Status"))
                        last.status = std::string(text::trim(f.value));
                    else if (last.diagnostic.empty() && iequals(f.name, "Diagnostic-Code"))
                        last.diagnostic = strip_type(f.value);
                    last.fields.fields.push_back(std::move(f));
                }
            }
        }
        first_block = false;
    }
    return report;
}

}  // namespace backstop
