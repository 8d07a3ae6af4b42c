// The returned original (what the watermark check needs) and the small value types
// of classify.hpp.
#include <string>
#include <string_view>

#include "bounce_internal.hpp"
#include "mime_text.hpp"

namespace backstop {

std::string_view to_string(MessageKind k) {
    switch (k) {
        case MessageKind::dsn:
            return "dsn";
        case MessageKind::autoreply:
            return "autoreply";
        case MessageKind::challenge:
            return "challenge";
        case MessageKind::feedback:
            return "feedback";
        case MessageKind::none:
            break;
    }
    return "none";
}

std::vector<const BounceRecipient*> Classification::failed_recipients() const {
    std::vector<const BounceRecipient*> out;
    for (const auto& r : recipients)
        if (r.failed()) out.push_back(&r);
    return out;
}

void MessageBuffer::append(std::string_view s) {
    if (data_.size() >= max_) {
        truncated_ = truncated_ || !s.empty();
        return;
    }
    std::size_t room = max_ - data_.size();
    if (s.size() > room) {
        truncated_ = true;
        s = s.substr(0, room);
    }
    data_.append(s);
}

void MessageBuffer::add_header(std::string_view name, std::string_view value) {
    append(name);
    append(": ");
    append(value);
    append("\r\n");
}

void MessageBuffer::end_of_headers() {
    append("\r\n");
}
void MessageBuffer::add_body(std::string_view chunk) {
    append(chunk);
}

void MessageBuffer::clear() {
    data_.clear();
    truncated_ = false;
}

namespace detail {

void describe_original(const HeaderList& h, std::string_view header_name, OriginalMessage& o) {
    o.present = true;
    o.message_id = std::string(text::trim(h.get("Message-ID")));
    o.from = decode_header_words(h.get("From"));
    o.to = decode_header_words(h.get("To"));
    o.subject = decode_header_words(h.get("Subject"));
    o.date = std::string(h.get("Date"));
    std::string_view sender = h.get("Return-Path");
    if (sender.empty()) sender = h.get("X-Envelope-From");
    if (sender.empty()) sender = h.get("X-Postfix-Sender");
    if (!sender.empty()) {
        auto addrs = header_addresses(sender);
        o.envelope_sender = addrs.empty() ? std::string(text::trim(sender)) : addrs.front();
        if (o.envelope_sender == "<>") o.envelope_sender.clear();
    }
    for (const auto& f : h.fields) {
        if (iequals(f.name, "Received")) {
            if (o.received.size() < 32) o.received.push_back(f.value);
            if (o.envelope_sender.empty()) {
                std::size_t ef = text::ifind(f.value, "envelope-from");
                if (ef != std::string::npos) {
                    auto addrs = header_addresses(std::string_view(f.value).substr(ef, 200));
                    if (!addrs.empty()) o.envelope_sender = addrs.front();
                }
            }
        } else if (iequals(f.name, header_name)) {
            if (o.watermark_found.value.empty()) o.watermark_found.value = f.value;
        } else if (f.name.size() > 22 &&
                   iequals(std::string_view(f.name).substr(f.name.size() - 22),
                           "-MailScanner-Watermark")) {
            if (o.watermark_found.mailscanner.empty()) o.watermark_found.mailscanner = f.value;
        } else if (iequals(f.name, "MailScanner-Watermark") &&
                   o.watermark_found.mailscanner.empty()) {
            o.watermark_found.mailscanner = f.value;
        }
    }
    o.watermark_found.message_id = o.message_id;
    o.watermark_found.date = o.date;
    o.watermark_found.envelope_sender = o.envelope_sender;
}

}  // namespace detail

}  // namespace backstop
