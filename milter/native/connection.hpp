// One MTA connection: the milter protocol's state machine in front of a Session.
// It takes decoded packets, calls the Session and writes the replies and the
// end-of-message modifications as bytes. No sockets, so every exchange can be
// tested and fuzzed as bytes in, bytes out.
//
// No exception leaves handle(): anything thrown is logged and answered with a
// tempfail (never accept-and-drop), or closes the connection where the protocol
// allows no answer.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backstop/base/clock.hpp"
#include "backstop/base/metrics.hpp"
#include "backstop/policy/session.hpp"
#include "policy_holder.hpp"
#include "protocol.hpp"

namespace backstop::milter {

class Connection {
  public:
    // holder: where a new SMTP connection takes its Policy and state store from.
    Connection(const PolicyHolder& holder, Metrics& metrics, const Clock& clock);

    // Handles one packet and appends what the MTA must read to out.
    void handle(const proto::Packet& packet, std::string& out);

    // The MTA said QUIT, or the stream is broken: close the socket.
    bool finished() const { return finished_; }
    // A message is under way (MAIL seen, no end of message or abort yet).
    bool in_message() const { return in_message_; }
    // Whether handling this command may wait on something outside the process (SPF
    // lookups, an SQLite or Redis state store): then it runs on a worker thread.
    bool may_block(char command) const;

  private:
    void negotiate(std::string_view data, std::string& out);
    void connect(std::string_view data, std::string& out);
    void end_of_message(std::string_view data, std::string& out);
    void store_macros(std::string_view data);
    // Drops the macros of the stages after this command's, as libmilter does.
    void forget_later_macros(char command);
    std::string macro(std::string_view name) const;
    // Appends the reply for a decision (nothing when no_reply_flag was agreed).
    void answer(const Decision& d, std::string& out, std::uint32_t no_reply_flag = 0);
    void internal_error(char command, const char* what, std::string& out);
    std::string queue_id() const;

    const PolicyHolder& holder_;
    Metrics& metrics_;
    const Clock& clock_;

    bool negotiated_ = false;
    proto::Agreement agreement_;
    // Per SMTP connection: kept alive as long as the session that uses it.
    std::shared_ptr<StateStore> state_;
    std::unique_ptr<Session> session_;
    bool blocking_backends_ = false;  // SPF or a state store outside the process
    // Macros by the command they came with, most recent first when looked up.
    std::vector<std::pair<char, std::vector<std::pair<std::string, std::string>>>> macros_;
    bool in_message_ = false;
    bool finished_ = false;
};

}  // namespace backstop::milter
