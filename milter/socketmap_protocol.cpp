#include "socketmap_protocol.hpp"

namespace backstop::milter {

namespace {

// More digits than any accepted length, even with leading zeros, is not a length.
constexpr std::size_t kMaxLengthDigits = 20;

}  // namespace

void NetstringReader::append(std::string_view bytes) {
    if (error_ != Error::none) return;
    // Drop what was already returned before growing, so a long-lived connection
    // does not keep every request it ever sent.
    if (pos_ > 0 && (pos_ == buffer_.size() || pos_ >= 4096)) {
        buffer_.erase(0, pos_);
        pos_ = 0;
    }
    buffer_.append(bytes);
}

std::optional<std::string_view> NetstringReader::next() {
    if (error_ != Error::none) return std::nullopt;
    const std::string_view rest = std::string_view(buffer_).substr(pos_);
    std::size_t length = 0, i = 0;
    for (; i < rest.size() && rest[i] != ':'; ++i) {
        const char c = rest[i];
        if (c < '0' || c > '9' || i >= kMaxLengthDigits) {
            error_ = Error::malformed;
            return std::nullopt;
        }
        length = length * 10 + std::size_t(c - '0');
        if (length > kSocketmapMaxRequest) {
            error_ = Error::too_long;
            return std::nullopt;
        }
    }
    if (i == rest.size()) return std::nullopt;  // the length goes on
    if (i == 0) {
        error_ = Error::malformed;  // ":" with no length
        return std::nullopt;
    }
    const std::size_t data = i + 1;
    if (rest.size() < data + length + 1) return std::nullopt;
    if (rest[data + length] != ',') {
        error_ = Error::malformed;
        return std::nullopt;
    }
    pos_ += data + length + 1;
    return rest.substr(data, length);
}

const char* NetstringReader::error_text() const {
    switch (error_) {
        case Error::none:
            return "";
        case Error::malformed:
            return "malformed netstring";
        case Error::too_long:
            return "request longer than 100000 bytes";
    }
    return "";
}

SocketmapRequest split_request(std::string_view data) {
    SocketmapRequest r;
    const std::size_t space = data.find(' ');
    if (space == std::string_view::npos) {
        r.name = data;
        return r;
    }
    r.name = data.substr(0, space);
    r.key = data.substr(space + 1);
    r.well_formed = space > 0;
    return r;
}

SocketmapExchange answer_request(const Policy& policy, std::string_view data, UnixTime now,
                                 StateStore* state) {
    SocketmapExchange x;
    x.request = split_request(data);
    if (!x.request.well_formed) {
        x.answer.status = MapStatus::perm;
        x.answer.value = "malformed request: expected NAME KEY";
        return x;
    }
    x.answer = lookup(policy, x.request.name, x.request.key, now, state);
    return x;
}

void append_netstring(std::string& out, std::string_view data) {
    out.append(std::to_string(data.size())).append(":").append(data).append(",");
}

void append_reply(std::string& out, const MapAnswer& answer) {
    std::string_view word;
    switch (answer.status) {
        case MapStatus::ok:
            word = "OK ";
            break;
        case MapStatus::notfound:
            append_netstring(out, "NOTFOUND ");
            return;
        case MapStatus::temp:
            word = "TEMP ";
            break;
        case MapStatus::perm:
            word = "PERM ";
            break;
    }
    out.append(std::to_string(word.size() + answer.value.size()))
        .append(":")
        .append(word)
        .append(answer.value)
        .append(",");
}

}  // namespace backstop::milter
