// A small milter protocol (version 6) client: the MTA side of the conversation,
// as Postfix or Sendmail speak it, for tests of backstop-milter over its socket.
//
// Every packet is a 4-byte big-endian length (command byte included), one command
// byte, then the data; strings are NUL-terminated. Every reply is decoded into a
// plain struct, including each modification action at end of message, so a test
// can assert `eom.new_sender == "<prvs=...>"` (the idea of emersion/go-milter's client).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backstop::test {

namespace milter {
// Actions the MTA allows the milter (SMFIF_*).
inline constexpr std::uint32_t kActAddHeaders = 0x01;
inline constexpr std::uint32_t kActChangeBody = 0x02;
inline constexpr std::uint32_t kActAddRcpt = 0x04;
inline constexpr std::uint32_t kActDelRcpt = 0x08;
inline constexpr std::uint32_t kActChangeHeaders = 0x10;
inline constexpr std::uint32_t kActQuarantine = 0x20;
inline constexpr std::uint32_t kActChangeFrom = 0x40;
inline constexpr std::uint32_t kActAddRcptPar = 0x80;
inline constexpr std::uint32_t kActSetSymList = 0x100;
inline constexpr std::uint32_t kAllActions = 0x1ff;

// Protocol flags (SMFIP_*): steps the milter may ask not to receive (NO*) or not
// to answer (NR_*).
inline constexpr std::uint32_t kNoConnect = 0x01;
inline constexpr std::uint32_t kNoHelo = 0x02;
inline constexpr std::uint32_t kNoMail = 0x04;
inline constexpr std::uint32_t kNoRcpt = 0x08;
inline constexpr std::uint32_t kNoBody = 0x10;
inline constexpr std::uint32_t kNoHeaders = 0x20;
inline constexpr std::uint32_t kNoEoh = 0x40;
inline constexpr std::uint32_t kNrHeader = 0x80;
inline constexpr std::uint32_t kNoUnknown = 0x100;
inline constexpr std::uint32_t kNoData = 0x200;
inline constexpr std::uint32_t kSkip = 0x400;
inline constexpr std::uint32_t kRcptRej = 0x800;
inline constexpr std::uint32_t kNrConnect = 0x1000;
inline constexpr std::uint32_t kNrHelo = 0x2000;
inline constexpr std::uint32_t kNrMail = 0x4000;
inline constexpr std::uint32_t kNrRcpt = 0x8000;
inline constexpr std::uint32_t kNrData = 0x10000;
inline constexpr std::uint32_t kNrUnknown = 0x20000;
inline constexpr std::uint32_t kNrEoh = 0x40000;
inline constexpr std::uint32_t kNrBody = 0x80000;
// Every "do not send" step plus SKIP, and no NR_* flag: every step we send gets a reply.
inline constexpr std::uint32_t kOfferAllSteps = kNoConnect | kNoHelo | kNoMail | kNoRcpt | kNoBody |
                                                kNoHeaders | kNoEoh | kNoUnknown | kNoData | kSkip;
inline constexpr std::uint32_t kAllNoReply =
    kNrHeader | kNrConnect | kNrHelo | kNrMail | kNrRcpt | kNrData | kNrUnknown | kNrEoh | kNrBody;

// Macro stages of SETSYMLIST in the OPTNEG reply (SMFIM_*).
enum class Stage : std::uint32_t { connect = 0, helo, mail, rcpt, data, eom, eoh };
}  // namespace milter

// Network failure, timeout or a reply the protocol does not allow.
class MilterError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// What the milter answered to one step.
enum class Action {
    continue_,  // 'c'
    accept,     // 'a'
    reject,     // 'r' (MTA default 5xx text)
    tempfail,   // 't' (MTA default 4xx text)
    discard,    // 'd'
    replycode,  // 'y': text holds "550 5.7.1 ..."
    skip,       // 's': no more body chunks wanted
    shutdown,   // '4': 421
    conn_fail,  // 'f'
    no_reply,   // the milter negotiated NR_* for this step: nothing was read
    not_sent,   // the milter negotiated NO* for this step: nothing was sent
};
const char* to_string(Action action);
std::ostream& operator<<(std::ostream& out, Action action);  // readable test failures

struct Response {
    Action action = Action::continue_;
    std::string text;  // REPLYCODE only: "550 5.7.1 Text"

    // "550" for a REPLYCODE, "" otherwise.
    std::string code() const { return text.substr(0, text.find(' ')); }
    // A reply that lets the transaction go on.
    bool proceeds() const {
        return action == Action::continue_ || action == Action::no_reply ||
               action == Action::not_sent || action == Action::skip;
    }
    // REJECT, or a REPLYCODE with a 5xx code.
    bool is_reject() const {
        return action == Action::reject || (action == Action::replycode && text.starts_with("5"));
    }
    // TEMPFAIL, or a REPLYCODE with a 4xx code.
    bool is_tempfail() const {
        return action == Action::tempfail || (action == Action::replycode && text.starts_with("4"));
    }
};

// One header modification at EOM.
struct HeaderEdit {
    enum class Kind { add, insert, change };
    Kind kind = Kind::add;
    std::uint32_t index = 0;  // insert: position; change: 1-based occurrence of name
    std::string name;
    std::string value;  // change with an empty value deletes the header
};

struct AddedRecipient {
    std::string address;
    std::string args;  // ADDRCPT_PAR only
    bool with_args = false;
};

// Everything the milter sent after EOM, in decoded form.
struct EomResult {
    Response response;                      // the final answer
    std::optional<std::string> new_sender;  // CHGFROM address, e.g. "<prvs=...>"
    std::string new_sender_args;            // CHGFROM ESMTP args, if any
    std::vector<AddedRecipient> added_recipients;
    std::vector<std::string> deleted_recipients;
    std::vector<HeaderEdit> header_edits;
    std::optional<std::string> new_body;  // REPLBODY chunks, concatenated
    std::optional<std::string> quarantine_reason;
    int progress = 0;          // PROGRESS packets seen
    std::string action_codes;  // every reply byte in order, e.g. "e-+mc"

    // Header edits of kind change with this name (case-insensitive).
    std::vector<HeaderEdit> changes_of(std::string_view name) const;
    // Added recipient addresses only.
    std::vector<std::string> added_addresses() const;
};

struct Negotiated {
    std::uint32_t version = 0;
    std::uint32_t actions = 0;
    std::uint32_t protocol = 0;
    std::vector<std::pair<milter::Stage, std::string>> macro_lists;  // SETSYMLIST requests
};

struct ClientOptions {
    std::chrono::milliseconds timeout{10000};  // every read and write
    std::uint32_t version = 6;
    std::uint32_t actions = milter::kAllActions;
    // As Postfix and Sendmail offer: every step may be skipped or left unanswered.
    std::uint32_t protocol = milter::kOfferAllSteps | milter::kAllNoReply;
    // Nonzero: every write goes out in pieces of random size drawn from this seed,
    // one send() each with TCP_NODELAY, as a busy MTA's packets may arrive.
    std::uint64_t split_seed = 0;
};

// A whole message for send_message(): macros are sent with the step they belong to,
// filtered by the milter's SETSYMLIST requests as Postfix does.
struct Message {
    std::string client_host = "client.example";
    std::string client_addr = "127.0.0.1";
    char family = '4';  // '4', '6', 'L' (unix socket), 'U' (unknown)
    std::uint16_t client_port = 40000;
    std::string helo = "client.example";
    std::string queue_id = "4ABCDEF123";     // macro i, sent with RCPT, DATA and EOM
    std::optional<std::string> auth_authen;  // macro {auth_authen}, sent with MAIL
    std::vector<std::string> mail_args;      // e.g. {"<a@b>", "SIZE=10"}; empty: {sender}
    std::string sender = "<>";
    std::vector<std::string> recipients;  // "<x@y>"
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body = "Hello.\r\n";
};

// Replies of one send_message() run; stops at the first reply that ends it.
struct Transcript {
    Response connect, helo, mail, data, eoh;
    std::vector<Response> rcpts;
    std::vector<Response> headers;
    std::vector<Response> body;
    std::optional<EomResult> eom;  // absent when an earlier step ended the message
    // Recipients that the milter accepted, in order.
    std::vector<std::string> accepted_recipients;
    bool in_transaction = false;  // MAIL was accepted
    bool aborted = false;         // ended before EOM: send_message() sent ABORT
};

class MilterClient {
  public:
    // Connects over TCP (IPv4 or IPv6 literal or name); throws MilterError.
    static MilterClient connect_tcp(const std::string& host, std::uint16_t port,
                                    ClientOptions options = {});
    static MilterClient connect_unix(const std::string& path, ClientOptions options = {});

    MilterClient(MilterClient&& other) noexcept;
    MilterClient& operator=(MilterClient&& other) noexcept;
    MilterClient(const MilterClient&) = delete;
    MilterClient& operator=(const MilterClient&) = delete;
    ~MilterClient();

    // OPTNEG: offers options().version/actions/protocol, returns the milter's choice.
    Negotiated negotiate();
    const Negotiated& negotiated() const { return negotiated_; }

    // One step each. Macros get no reply; they precede the step they belong to.
    void macros(char command, const std::vector<std::pair<std::string, std::string>>& pairs);
    // Like Postfix: when the milter asked for a macro list for this step (SETSYMLIST),
    // sends only the macros on it; otherwise all of them. Nothing left: nothing sent.
    void requested_macros(char command,
                          const std::vector<std::pair<std::string, std::string>>& pairs);
    Response conn(const std::string& hostname, char family, std::uint16_t port,
                  const std::string& address);
    Response helo(const std::string& name);
    Response mail(const std::vector<std::string>& args);
    Response rcpt(const std::vector<std::string>& args);
    Response data();
    Response header(const std::string& name, const std::string& value);
    Response eoh();
    Response body(std::string_view chunk);
    EomResult eom(std::string_view last_chunk = {});
    void abort();    // ends the message, keeps the connection (no reply)
    void quit();     // ends the connection (no reply)
    void quit_nc();  // QUIT_NC: a new connection follows on this socket
    Response unknown(const std::string& command);

    // The whole conversation of one message after negotiate(): macros, connect (if
    // with_connect), HELO, MAIL, RCPTs, DATA, headers, EOH, body in 64 KiB chunks, EOM.
    Transcript send_message(const Message& message, bool with_connect = true);

    // Raw access for robustness tests.
    void send_packet(char command, std::string_view data);
    void send_bytes(std::string_view bytes);
    // The socket itself, for tests that look at it from the other end.
    int native_handle() const { return fd_; }
    // Reads one packet; throws MilterError on timeout or EOF.
    std::pair<char, std::string> read_packet();
    // True when the peer closed the connection (reads until EOF or the timeout).
    bool wait_closed(std::chrono::milliseconds timeout);

    ClientOptions& options() { return options_; }

  private:
    MilterClient(int fd, ClientOptions options);
    Transcript run_message(const Message& message, bool with_connect);
    Response step(char command, std::string_view data, std::uint32_t no_flag,
                  std::uint32_t nr_flag);
    Response read_response(std::string_view step_name);
    void write_all(std::string_view bytes);
    void read_exact(char* out, std::size_t n);
    std::size_t next_piece(std::size_t left);  // split_seed: the size of the next send()

    int fd_ = -1;
    std::uint64_t split_state_ = 0;
    ClientOptions options_;
    Negotiated negotiated_;
};

// Helpers: wrap an address in <> when it is not already.
std::string angle(std::string_view address);

}  // namespace backstop::test
