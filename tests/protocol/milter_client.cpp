// The milter protocol client; see milter_client.hpp for the wire format.
#include "milter_client.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <strings.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ostream>

namespace backstop::test {

namespace {

constexpr std::size_t kMaxPacket = 16 * 1024 * 1024;  // a sane bound against garbage
constexpr std::size_t kChunk = 65535;                 // MILTER_CHUNK_SIZE

void put_u32(std::string& out, std::uint32_t v) {
    out.push_back(static_cast<char>((v >> 24) & 0xff));
    out.push_back(static_cast<char>((v >> 16) & 0xff));
    out.push_back(static_cast<char>((v >> 8) & 0xff));
    out.push_back(static_cast<char>(v & 0xff));
}

std::uint32_t get_u32(std::string_view in, std::size_t at) {
    if (in.size() < at + 4) throw MilterError("packet too short for a 32-bit value");
    auto b = [&](std::size_t i) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(in[at + i]));
    };
    return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

void put_str(std::string& out, std::string_view s) {
    out.append(s);
    out.push_back('\0');
}

// Splits data into its NUL-terminated strings (a trailing piece without NUL counts too).
std::vector<std::string> split_nul(std::string_view data) {
    std::vector<std::string> parts;
    while (!data.empty()) {
        auto end = data.find('\0');
        parts.emplace_back(data.substr(0, end));
        if (end == std::string_view::npos) break;
        data.remove_prefix(end + 1);
    }
    return parts;
}

std::string nth(const std::vector<std::string>& parts, std::size_t i) {
    return i < parts.size() ? parts[i] : std::string();
}

std::string describe(char command) {
    if (command >= 0x20 && command < 0x7f) return std::string("'") + command + "'";
    return "0x" + std::to_string(static_cast<unsigned char>(command));
}

int connect_to(const sockaddr* addr, socklen_t len, int family, std::chrono::milliseconds timeout) {
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    // Connect can be slow only when the peer is not there; loopback answers at once.
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, addr, len) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

const char* to_string(Action action) {
    switch (action) {
        case Action::continue_:
            return "continue";
        case Action::accept:
            return "accept";
        case Action::reject:
            return "reject";
        case Action::tempfail:
            return "tempfail";
        case Action::discard:
            return "discard";
        case Action::replycode:
            return "replycode";
        case Action::skip:
            return "skip";
        case Action::shutdown:
            return "shutdown";
        case Action::conn_fail:
            return "conn_fail";
        case Action::no_reply:
            return "no_reply";
        case Action::not_sent:
            return "not_sent";
    }
    return "?";
}

std::ostream& operator<<(std::ostream& out, Action action) {
    return out << to_string(action);
}

std::vector<HeaderEdit> EomResult::changes_of(std::string_view name) const {
    std::vector<HeaderEdit> out;
    for (const auto& e : header_edits) {
        if (e.kind == HeaderEdit::Kind::change && e.name.size() == name.size() &&
            ::strncasecmp(e.name.data(), name.data(), name.size()) == 0)
            out.push_back(e);
    }
    return out;
}

std::vector<std::string> EomResult::added_addresses() const {
    std::vector<std::string> out;
    for (const auto& r : added_recipients) out.push_back(r.address);
    return out;
}

std::string angle(std::string_view address) {
    if (address.starts_with("<")) return std::string(address);
    return "<" + std::string(address) + ">";
}

MilterClient MilterClient::connect_tcp(const std::string& host, std::uint16_t port,
                                       ClientOptions options) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    auto service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0)
        throw MilterError("resolve " + host + ": " + ::gai_strerror(rc));
    int fd = -1;
    for (auto* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next)
        fd = connect_to(ai->ai_addr, ai->ai_addrlen, ai->ai_family, options.timeout);
    ::freeaddrinfo(list);
    if (fd < 0) throw MilterError("connect " + host + ":" + service + ": " + std::strerror(errno));
    // A macro packet and its command are two writes with no reply between them:
    // without TCP_NODELAY, Nagle holds the second one until the first is ACKed.
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return MilterClient(fd, options);
}

MilterClient MilterClient::connect_unix(const std::string& path, ClientOptions options) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof sun.sun_path) throw MilterError("socket path too long: " + path);
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    int fd = connect_to(reinterpret_cast<sockaddr*>(&sun), sizeof sun, AF_UNIX, options.timeout);
    if (fd < 0) throw MilterError("connect " + path + ": " + std::strerror(errno));
    return MilterClient(fd, options);
}

MilterClient::MilterClient(int fd, ClientOptions options)
    : fd_(fd), split_state_(options.split_seed), options_(options) {
    if (options_.split_seed != 0) {  // each piece its own segment (fails on unix sockets)
        int one = 1;
        (void)::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

MilterClient::MilterClient(MilterClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      split_state_(other.split_state_),
      options_(other.options_),
      negotiated_(other.negotiated_) {}

MilterClient& MilterClient::operator=(MilterClient&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        split_state_ = other.split_state_;
        options_ = other.options_;
        negotiated_ = other.negotiated_;
    }
    return *this;
}

MilterClient::~MilterClient() {
    if (fd_ >= 0) ::close(fd_);
}

void MilterClient::write_all(std::string_view bytes) {
    while (!bytes.empty()) {
        pollfd p{fd_, POLLOUT, 0};
        int rc = ::poll(&p, 1, static_cast<int>(options_.timeout.count()));
        if (rc == 0) throw MilterError("timeout writing to the milter");
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) throw MilterError(std::string("poll: ") + std::strerror(errno));
        const std::size_t piece = options_.split_seed ? next_piece(bytes.size()) : bytes.size();
        ssize_t n = ::send(fd_, bytes.data(), piece, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw MilterError(std::string("write to the milter: ") + std::strerror(errno));
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::size_t MilterClient::next_piece(std::size_t left) {
    split_state_ = split_state_ * 6364136223846793005ull + 1442695040888963407ull;
    return 1 + std::size_t(split_state_ >> 33) % left;
}

void MilterClient::read_exact(char* out, std::size_t n) {
    while (n > 0) {
        pollfd p{fd_, POLLIN, 0};
        int rc = ::poll(&p, 1, static_cast<int>(options_.timeout.count()));
        if (rc == 0) throw MilterError("timeout waiting for the milter");
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) throw MilterError(std::string("poll: ") + std::strerror(errno));
        ssize_t got = ::recv(fd_, out, n, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got == 0) throw MilterError("the milter closed the connection");
        if (got < 0)
            throw MilterError(std::string("read from the milter: ") + std::strerror(errno));
        out += got;
        n -= static_cast<std::size_t>(got);
    }
}

void MilterClient::send_bytes(std::string_view bytes) {
    write_all(bytes);
}

void MilterClient::send_packet(char command, std::string_view data) {
    std::string packet;
    put_u32(packet, static_cast<std::uint32_t>(data.size() + 1));
    packet.push_back(command);
    packet.append(data);
    write_all(packet);
}

std::pair<char, std::string> MilterClient::read_packet() {
    char len_bytes[4];
    read_exact(len_bytes, 4);
    std::uint32_t len = get_u32(std::string_view(len_bytes, 4), 0);
    if (len == 0 || len > kMaxPacket)
        throw MilterError("bad packet length " + std::to_string(len) + " from the milter");
    std::string body(len, '\0');
    read_exact(body.data(), len);
    return {body[0], body.substr(1)};
}

bool MilterClient::wait_closed(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[512];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd_, POLLIN, 0};
        int rc = ::poll(&p, 1, static_cast<int>(left.count()));
        if (rc == 0) return false;
        if (rc < 0) continue;
        ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
        if (got <= 0) return true;  // EOF or reset: closed
    }
}

Negotiated MilterClient::negotiate() {
    std::string data;
    put_u32(data, options_.version);
    put_u32(data, options_.actions);
    put_u32(data, options_.protocol);
    send_packet('O', data);
    auto [command, reply] = read_packet();
    if (command != 'O') throw MilterError("OPTNEG: expected 'O', got " + describe(command));
    Negotiated n;
    n.version = get_u32(reply, 0);
    n.actions = get_u32(reply, 4);
    n.protocol = get_u32(reply, 8);
    // Version 6 may append macro lists: a 32-bit stage then a NUL-terminated list.
    std::string_view rest = std::string_view(reply).substr(12);
    while (rest.size() >= 4) {
        auto stage = static_cast<milter::Stage>(get_u32(rest, 0));
        rest.remove_prefix(4);
        auto end = rest.find('\0');
        n.macro_lists.emplace_back(stage, std::string(rest.substr(0, end)));
        rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    }
    // An offer of no actions is version 1's four (libmilter reads it so).
    const std::uint32_t offered = options_.actions ? options_.actions : 0x0f;
    if (n.actions & ~offered)
        throw MilterError("OPTNEG: the milter wants actions we did not offer");
    negotiated_ = n;
    return n;
}

Response MilterClient::read_response(std::string_view step_name) {
    for (;;) {
        auto [command, data] = read_packet();
        switch (command) {
            case 'c':
                return {Action::continue_, {}};
            case 'a':
                return {Action::accept, {}};
            case 'r':
                return {Action::reject, {}};
            case 't':
                return {Action::tempfail, {}};
            case 'd':
                return {Action::discard, {}};
            case 's':
                return {Action::skip, {}};
            case '4':
                return {Action::shutdown, {}};
            case 'f':
                return {Action::conn_fail, {}};
            case 'y':
                return {Action::replycode, nth(split_nul(data), 0)};
            case 'p':
                // Sendmail takes SMFIR_PROGRESS only at end of message (which
                // read_eom handles): anywhere else it fails the command.
                throw MilterError(std::string(step_name) + ": progress outside end of message");
            default:
                throw MilterError(std::string(step_name) + ": unexpected reply " +
                                  describe(command));
        }
    }
}

// Sends one step unless the milter asked not to get it, then reads the reply unless
// it asked not to answer it.
Response MilterClient::step(char command, std::string_view data, std::uint32_t no_flag,
                            std::uint32_t nr_flag) {
    if (no_flag != 0 && (negotiated_.protocol & no_flag)) return {Action::not_sent, {}};
    send_packet(command, data);
    if (nr_flag != 0 && (negotiated_.protocol & nr_flag)) return {Action::no_reply, {}};
    return read_response(describe(command));
}

void MilterClient::macros(char command,
                          const std::vector<std::pair<std::string, std::string>>& pairs) {
    std::string data(1, command);
    for (const auto& [name, value] : pairs) {
        put_str(data, name);
        put_str(data, value);
    }
    send_packet('D', data);
}

namespace {

// The SETSYMLIST stage of the step a macro packet belongs to.
std::optional<milter::Stage> stage_of(char command) {
    switch (command) {
        case 'C':
            return milter::Stage::connect;
        case 'H':
            return milter::Stage::helo;
        case 'M':
            return milter::Stage::mail;
        case 'R':
            return milter::Stage::rcpt;
        case 'T':
            return milter::Stage::data;
        case 'E':
            return milter::Stage::eom;
        case 'N':
            return milter::Stage::eoh;
        default:
            return std::nullopt;
    }
}

// "{auth_authen}" and "auth_authen" name the same macro.
std::string bare(std::string_view name) {
    if (name.size() >= 2 && name.front() == '{' && name.back() == '}')
        name = name.substr(1, name.size() - 2);
    return std::string(name);
}

bool on_list(const std::string& list, const std::string& name) {
    std::size_t at = 0;
    while (at < list.size()) {
        auto end = list.find(' ', at);
        if (end == std::string::npos) end = list.size();
        if (bare(std::string_view(list).substr(at, end - at)) == bare(name)) return true;
        at = end + 1;
    }
    return false;
}

}  // namespace

void MilterClient::requested_macros(char command,
                                    const std::vector<std::pair<std::string, std::string>>& pairs) {
    auto stage = stage_of(command);
    const std::string* list = nullptr;
    for (const auto& [s, names] : negotiated_.macro_lists)
        if (stage && s == *stage) list = &names;
    std::vector<std::pair<std::string, std::string>> wanted;
    for (const auto& p : pairs)
        if (list == nullptr || on_list(*list, p.first)) wanted.push_back(p);
    if (!wanted.empty()) macros(command, wanted);
}

Response MilterClient::conn(const std::string& hostname, char family, std::uint16_t port,
                            const std::string& address) {
    std::string data;
    put_str(data, hostname);
    data.push_back(family);
    if (family != 'U') {
        data.push_back(static_cast<char>(port >> 8));
        data.push_back(static_cast<char>(port & 0xff));
        put_str(data, address);
    }
    return step('C', data, milter::kNoConnect, milter::kNrConnect);
}

Response MilterClient::helo(const std::string& name) {
    std::string data;
    put_str(data, name);
    return step('H', data, milter::kNoHelo, milter::kNrHelo);
}

Response MilterClient::mail(const std::vector<std::string>& args) {
    std::string data;
    for (const auto& a : args) put_str(data, a);
    return step('M', data, milter::kNoMail, milter::kNrMail);
}

Response MilterClient::rcpt(const std::vector<std::string>& args) {
    std::string data;
    for (const auto& a : args) put_str(data, a);
    return step('R', data, milter::kNoRcpt, milter::kNrRcpt);
}

Response MilterClient::data() {
    return step('T', {}, milter::kNoData, milter::kNrData);
}

Response MilterClient::header(const std::string& name, const std::string& value) {
    std::string data;
    put_str(data, name);
    put_str(data, value);
    return step('L', data, milter::kNoHeaders, milter::kNrHeader);
}

Response MilterClient::eoh() {
    return step('N', {}, milter::kNoEoh, milter::kNrEoh);
}

Response MilterClient::body(std::string_view chunk) {
    return step('B', chunk, milter::kNoBody, milter::kNrBody);
}

Response MilterClient::unknown(const std::string& command) {
    std::string data;
    put_str(data, command);
    return step('U', data, milter::kNoUnknown, milter::kNrUnknown);
}

EomResult MilterClient::eom(std::string_view last_chunk) {
    send_packet('E', last_chunk);
    EomResult result;
    for (;;) {
        auto [command, data] = read_packet();
        result.action_codes.push_back(command);
        auto parts = split_nul(data);
        switch (command) {
            case 'e':  // CHGFROM: address, optional ESMTP args
                result.new_sender = nth(parts, 0);
                result.new_sender_args = nth(parts, 1);
                continue;
            case '+':  // ADDRCPT
                result.added_recipients.push_back({nth(parts, 0), {}, false});
                continue;
            case '2':  // ADDRCPT_PAR
                result.added_recipients.push_back({nth(parts, 0), nth(parts, 1), true});
                continue;
            case '-':  // DELRCPT
                result.deleted_recipients.push_back(nth(parts, 0));
                continue;
            case 'h':  // ADDHEADER: name, value
                result.header_edits.push_back(
                    {HeaderEdit::Kind::add, 0, nth(parts, 0), nth(parts, 1)});
                continue;
            case 'i':    // INSHEADER: index, name, value
            case 'm': {  // CHGHEADER: index, name, value (empty value deletes)
                auto index = get_u32(data, 0);
                auto fields = split_nul(std::string_view(data).substr(4));
                auto kind = command == 'i' ? HeaderEdit::Kind::insert : HeaderEdit::Kind::change;
                result.header_edits.push_back({kind, index, nth(fields, 0), nth(fields, 1)});
                continue;
            }
            case 'b':  // REPLBODY: raw bytes, possibly in several chunks
                if (!result.new_body) result.new_body.emplace();
                result.new_body->append(data);
                continue;
            case 'q':  // QUARANTINE: reason
                result.quarantine_reason = nth(parts, 0);
                continue;
            case 'p':  // PROGRESS: keep waiting
                ++result.progress;
                continue;
            case 'c':
                result.response = {Action::continue_, {}};
                return result;
            case 'a':
                result.response = {Action::accept, {}};
                return result;
            case 'r':
                result.response = {Action::reject, {}};
                return result;
            case 't':
                result.response = {Action::tempfail, {}};
                return result;
            case 'd':
                result.response = {Action::discard, {}};
                return result;
            case '4':
                result.response = {Action::shutdown, {}};
                return result;
            case 'f':
                result.response = {Action::conn_fail, {}};
                return result;
            case 'y':
                result.response = {Action::replycode, nth(parts, 0)};
                return result;
            default:
                throw MilterError("EOM: unexpected reply " + describe(command));
        }
    }
}

void MilterClient::abort() {
    send_packet('A', {});
}
void MilterClient::quit() {
    send_packet('Q', {});
}
void MilterClient::quit_nc() {
    send_packet('K', {});
}

Transcript MilterClient::send_message(const Message& m, bool with_connect) {
    Transcript t = run_message(m, with_connect);
    // Like Postfix: a transaction that ends before EOM is closed with ABORT, so the
    // milter starts the next one clean.
    if (!t.eom && t.in_transaction) {
        abort();
        t.aborted = true;
    }
    return t;
}

Transcript MilterClient::run_message(const Message& m, bool with_connect) {
    Transcript t;
    if (with_connect) {
        t.connect = conn(m.client_host, m.family, m.client_port, m.client_addr);
        if (!t.connect.proceeds()) return t;
        t.helo = helo(m.helo);
        if (!t.helo.proceeds()) return t;
    }
    // Like Postfix: the queue ID is not known yet at MAIL, only from RCPT on.
    std::vector<std::pair<std::string, std::string>> mail_macros;
    if (m.auth_authen) mail_macros.emplace_back("{auth_authen}", *m.auth_authen);
    requested_macros('M', mail_macros);
    auto mail_args = m.mail_args.empty() ? std::vector<std::string>{m.sender} : m.mail_args;
    t.mail = mail(mail_args);
    if (!t.mail.proceeds()) return t;
    t.in_transaction = true;
    for (const auto& r : m.recipients) {
        requested_macros('R', {{"i", m.queue_id}});
        t.rcpts.push_back(rcpt({r}));
        if (t.rcpts.back().proceeds()) t.accepted_recipients.push_back(r);
        // An accept for a recipient accepts the whole message: the MTA stops asking.
        if (t.rcpts.back().action == Action::accept) return t;
    }
    if (t.accepted_recipients.empty()) return t;  // the MTA would not go on to DATA
    requested_macros('T', {{"i", m.queue_id}});
    t.data = data();
    if (!t.data.proceeds()) return t;
    for (const auto& [name, value] : m.headers) {
        t.headers.push_back(header(name, value));
        if (!t.headers.back().proceeds()) return t;
    }
    t.eoh = eoh();
    if (!t.eoh.proceeds()) return t;
    for (std::size_t at = 0; at < m.body.size(); at += kChunk) {
        t.body.push_back(body(std::string_view(m.body).substr(at, kChunk)));
        if (t.body.back().action == Action::skip) break;
        if (!t.body.back().proceeds()) return t;
    }
    requested_macros('E', {{"i", m.queue_id}});
    t.eom = eom();
    return t;
}

}  // namespace backstop::test
