// The milter protocol (version 6) on the wire, the filter's side: packet framing,
// decoding of the MTA's commands and encoding of our replies. No sockets here, so
// the parser can be unit-tested and fuzzed on bytes alone.
//
// Every packet is a 4-byte big-endian length (command byte included), one command
// byte, then the data; strings in the data are NUL-terminated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace backstop::milter::proto {

inline constexpr std::uint32_t kVersion = 6;
// The longest packet we take (command byte included): a 64 KiB body chunk, as
// Postfix and Sendmail send at most unless a larger size was negotiated (we don't).
inline constexpr std::uint32_t kMaxPacket = 65536;

// Commands from the MTA (SMFIC_*).
namespace cmd {
inline constexpr char abort = 'A';
inline constexpr char body = 'B';
inline constexpr char connect = 'C';
inline constexpr char macro = 'D';
inline constexpr char end_of_message = 'E';
inline constexpr char helo = 'H';
inline constexpr char quit_new_connection = 'K';
inline constexpr char header = 'L';
inline constexpr char mail = 'M';
inline constexpr char end_of_headers = 'N';
inline constexpr char negotiate = 'O';
inline constexpr char quit = 'Q';
inline constexpr char rcpt = 'R';
inline constexpr char data = 'T';
inline constexpr char unknown = 'U';
}  // namespace cmd

// Replies to the MTA (SMFIR_*).
namespace reply {
inline constexpr char add_rcpt = '+';
inline constexpr char del_rcpt = '-';
inline constexpr char accept = 'a';
inline constexpr char continue_ = 'c';
inline constexpr char discard = 'd';
inline constexpr char change_from = 'e';
inline constexpr char add_header = 'h';
inline constexpr char change_header = 'm';
inline constexpr char negotiate = 'O';
inline constexpr char progress = 'p';
inline constexpr char reject = 'r';
inline constexpr char tempfail = 't';
inline constexpr char reply_code = 'y';
}  // namespace reply

// Actions the filter may take at end of message (SMFIF_*).
namespace action {
inline constexpr std::uint32_t add_headers = 0x01;
inline constexpr std::uint32_t add_rcpt = 0x04;
inline constexpr std::uint32_t del_rcpt = 0x08;
inline constexpr std::uint32_t change_headers = 0x10;
inline constexpr std::uint32_t change_from = 0x40;
inline constexpr std::uint32_t set_symbol_list = 0x100;
}  // namespace action

// Protocol flags (SMFIP_*): steps the filter does not want (no_*) or does not
// answer (no_reply_*).
namespace step {
inline constexpr std::uint32_t no_connect = 0x01;
inline constexpr std::uint32_t no_helo = 0x02;
inline constexpr std::uint32_t no_reply_header = 0x80;
inline constexpr std::uint32_t no_unknown = 0x100;
inline constexpr std::uint32_t no_data = 0x200;
inline constexpr std::uint32_t no_reply_connect = 0x1000;
inline constexpr std::uint32_t no_reply_eoh = 0x40000;
inline constexpr std::uint32_t no_reply_body = 0x80000;
}  // namespace step

// Macro stages of the symbol lists in the negotiation reply (SMFIM_*).
enum class Stage : std::uint32_t { connect = 0, helo, mail, rcpt, data, eom, eoh };

struct Packet {
    char command = 0;
    std::string_view data;  // valid until the next call on the reader
};

// Splits a byte stream into packets. Feed it what the socket gave, then take
// packets until none is complete.
class PacketReader {
  public:
    void append(std::string_view bytes);
    // The next complete packet, or nullopt when more bytes are needed or the
    // stream is broken (see error()).
    std::optional<Packet> next();
    // Why the stream cannot go on (a length of 0 or above kMaxPacket); empty if fine.
    const std::string& error() const { return error_; }
    // Bytes received but not yet returned as packets.
    std::size_t pending() const { return buffer_.size() - start_; }

  private:
    std::string buffer_;
    std::size_t start_ = 0;  // first byte not yet returned
    std::string error_;
};

// SMFIC_OPTNEG: what the MTA offers.
struct Offer {
    std::uint32_t version = 0;
    std::uint32_t actions = 0;
    std::uint32_t steps = 0;
};
std::optional<Offer> parse_offer(std::string_view data);

// SMFIC_CONNECT: host name, then the family ('4', '6', 'L' unix, 'U' unknown), the
// port and the address text for '4' and '6'.
struct ConnectInfo {
    std::string hostname;
    char family = 'U';
    std::uint16_t port = 0;
    std::string address;  // "IPv6:" prefix removed; empty unless family is '4' or '6'
};
std::optional<ConnectInfo> parse_connect(std::string_view data);

// The NUL-terminated strings of MAIL, RCPT, HELO, HEADER (name, value) and the
// macro list (name, value, ...). A missing final NUL still ends the last string.
std::vector<std::string_view> split_strings(std::string_view data);

// Encoding: each appends one whole packet to out.
void append_packet(std::string& out, char code, std::string_view data = {});
// SMFIR_REPLYCODE: "550 5.7.1 text"; text must already be one safe line.
void append_reply_code(std::string& out, std::string_view code, std::string_view xcode,
                       std::string_view text);
// SMFIR_CHGHEADER: the index-th header of that name; an empty value removes it.
void append_change_header(std::string& out, std::uint32_t index, std::string_view name,
                          std::string_view value);
// Strings joined by NULs, each NUL-terminated (for CHGFROM, ADDRCPT, ADDHEADER...).
void append_strings_packet(std::string& out, char code, std::initializer_list<std::string_view> s);

// SMFIR_OPTNEG reply, with a symbol list per stage when the MTA allows lists.
struct Agreement {
    std::uint32_t version = kVersion;
    std::uint32_t actions = 0;
    std::uint32_t steps = 0;
    std::vector<std::pair<Stage, std::string>> symbols;  // "{auth_authen}", "i", ...
};
void append_agreement(std::string& out, const Agreement& a);

}  // namespace backstop::milter::proto
