// Bounce classification (DESIGN §6): tell a delivery status notification, an
// auto-reply, a challenge or a feedback report from ordinary mail, list the failed
// recipients with status, reply code and reason, and describe the returned original
// so its watermark can be checked.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "backstop/base/clock.hpp"
#include "backstop/bounce/watermark.hpp"

namespace backstop {

enum class MessageKind { none, dsn, autoreply, challenge, feedback };
std::string_view to_string(MessageKind k);

struct BounceRecipient {
    std::string address;     // lowercased domain, local part as written
    std::string status;      // RFC 3463 "5.1.1"; empty when the bounce gives none
    std::string reply_code;  // SMTP "550"; empty when unknown
    std::string action;      // failed, delayed, delivered, relayed, expanded; empty if unknown
    std::string diagnostic;  // the remote server's words, one line
    std::string reason;      // the vocabulary of shared/corpus/sisimai/README.md
    std::string remote_mta;  // host name of the server that refused, when the DSN names it
    bool hard = false;       // userunknown, hostunknown, hasmoved; notaccept with 5xx

    bool failed() const { return action.empty() || action == "failed"; }
};

struct OriginalMessage {
    bool present = false;  // a returned original (or its headers) was found
    std::string message_id;
    std::string from;
    std::string to;
    std::string subject;
    std::string date;
    std::string envelope_sender;  // Return-Path, else X-Envelope-From / envelope-from
    std::vector<std::string> received;
    WatermarkInput watermark_found;
    WatermarkStatus watermark = WatermarkStatus::absent;
};

struct Classification {
    MessageKind kind = MessageKind::none;
    std::string mta;                          // the format recognised: postfix, exim, rfc3464, ...
    std::vector<BounceRecipient> recipients;  // DSNs only; at most 256
    // Feedback reports and auto-replies: who the report is about / who replied.
    std::vector<std::string> about;
    OriginalMessage original;
    // The recipient encoded in a VERP envelope recipient (ClassifyOptions), if any.
    std::string verp_recipient;
    bool truncated = false;  // the message was longer than max_bytes

    // Recipients whose delivery failed (not delayed, delivered or relayed).
    std::vector<const BounceRecipient*> failed_recipients() const;
};

struct ClassifyOptions {
    std::size_t max_bytes = 512 * 1024;  // bytes of the message looked at
    // The bounce's envelope recipient (RCPT TO): decoded when it is a VERP address, and
    // the sender the watermark was made for when the original lacks Return-Path.
    std::string envelope_recipient;
    // Checks the watermark of the returned original when set.
    const Watermark* watermark = nullptr;
    UnixTime now = 0;  // when watermark expiry is judged: set it whenever watermark is
};

// Stateless; classify() is const and thread-safe.
class BounceClassifier {
  public:
    Classification classify(std::string_view message, const ClassifyOptions& options) const;
};

// Collects a message fed piece by piece (as a milter sees it) up to a byte cap,
// so the classifier gets one buffer at end of message.
class MessageBuffer {
  public:
    explicit MessageBuffer(std::size_t max_bytes = 512 * 1024) : max_(max_bytes) {}
    void add_header(std::string_view name, std::string_view value);
    void end_of_headers();
    void add_body(std::string_view chunk);
    std::string_view view() const { return data_; }
    bool truncated() const { return truncated_; }
    void clear();

  private:
    void append(std::string_view s);
    std::size_t max_;
    std::string data_;
    bool truncated_ = false;
};

}  // namespace backstop
