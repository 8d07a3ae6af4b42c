// MIME reading for classification: headers (folded, RFC 2047), nested multiparts,
// message/rfc822 and text/rfc822-headers, base64 and quoted-printable bodies.
// Built for bounces, not for display: it never fails, it tolerates missing or broken
// boundaries, truncated input and any mix of LF, CRLF and CR line ends, and it looks
// at no more than a fixed number of bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace backstop {

struct HeaderField {
    std::string name;   // as written
    std::string value;  // unfolded (CR/LF removed), leading/trailing blanks trimmed
};

class HeaderList {
  public:
    std::vector<HeaderField> fields;

    // First field with that name (case-insensitive), or nullptr.
    const std::string* find(std::string_view name) const;
    // Value of the first field with that name, or "".
    std::string_view get(std::string_view name) const;
    bool has(std::string_view name) const { return find(name) != nullptr; }
    std::size_t count(std::string_view name) const;
};

// Parses "type/subtype; a=b; c="d"" (RFC 2045/2231 without continuations).
struct ContentType {
    std::string type = "text/plain";                          // lowercased type/subtype
    std::vector<std::pair<std::string, std::string>> params;  // names lowercased
    std::string_view param(std::string_view name) const;
};
ContentType parse_content_type(std::string_view value);

struct MimeLimits {
    std::size_t max_bytes = 512 * 1024;  // bytes of the message looked at
    int max_depth = 12;                  // nesting of multiparts and messages
    std::size_t max_parts = 256;         // entities in the whole tree
    // Decode the bodies of nested parts that are neither text/* nor message/* (images,
    // archives, attachments of a returned original). The classifier reads none of
    // them and leaves them empty.
    bool decode_other_parts = true;
};

// One entity. A multipart has children; a message/rfc822 or text/rfc822-headers
// entity has one child: the enclosed message.
struct MimeEntity {
    HeaderList headers;
    ContentType content_type;
    std::string body;  // transfer-decoded, LF line ends, text/* in UTF-8; empty for multiparts
    std::vector<MimeEntity> children;
    bool headers_only = false;  // a text/rfc822-headers child

    bool is(std::string_view type) const { return content_type.type == type; }
    bool is_multipart() const { return content_type.type.starts_with("multipart/"); }
};

struct MimeMessage {
    MimeEntity root;
    bool truncated = false;  // the input was longer than max_bytes
};

// Never fails: whatever cannot be read as MIME is kept as a text body.
MimeMessage parse_mime(std::string_view data, const MimeLimits& limits = {});

// Pieces, exposed for the classifier and the tests.
std::string normalize_line_ends(std::string_view data, std::size_t max_bytes);
// Reads a header block from LF text; returns the offset where the body starts.
std::size_t parse_header_block(std::string_view text, HeaderList& out);
std::string decode_base64_lenient(std::string_view text);
std::string decode_quoted_printable(std::string_view text);
// Text in 'charset' as UTF-8 (iconv); the bytes unchanged when the charset is UTF-8,
// US-ASCII, unknown to iconv, or the text is not valid in it.
std::string convert_to_utf8(std::string_view charset, std::string bytes);
// RFC 2047 encoded words decoded to bytes; UTF-8 and ISO-8859-1 become UTF-8, other
// charsets stay as their bytes (ISO-2022-JP is matched as bytes).
std::string decode_header_words(std::string_view value);

}  // namespace backstop
