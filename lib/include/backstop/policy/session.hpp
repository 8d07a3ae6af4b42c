// Session: one SMTP connection as the MTA reports it through the milter protocol.
// It receives connect / helo / mail / rcpt / header / body / eom events in standard
// types and returns decisions and end-of-message actions; milter/ applies them.
// Message state resets at each MAIL and at abort(); connection state stays.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backstop/base/clock.hpp"
#include "backstop/base/metrics.hpp"
#include "backstop/bounce/classify.hpp"
#include "backstop/envelope/address.hpp"
#include "backstop/policy/policy.hpp"
#include "backstop/state/store.hpp"

namespace backstop {

class LogLine;

enum class Step {
    proceed,   // SMFIS_CONTINUE
    reject,    // 5xx with reply
    tempfail,  // 4xx with reply
    discard,   // accept and drop: only when configured
    accept,    // accept, no further callbacks for this message
};

struct Decision {
    Step step = Step::proceed;
    std::string code;   // "550", "451"
    std::string xcode;  // "5.7.1"
    std::string text;   // no CR/LF; milter/ doubles '%'
    // A recipient refused at RCPT: the line to log, beginning with the queue ID.
    std::string log_line;

    static Decision proceed() { return {}; }
};

struct HeaderEdit {
    enum class Kind { add, remove } kind = Kind::add;
    std::string name;
    std::string value;  // add only
    int index = 1;      // remove: the n-th header of that name (1-based)
};

struct EndOfMessage {
    Decision decision;
    std::optional<std::string> new_sender;       // bare address, no <>
    std::vector<std::string> remove_recipients;  // as the MTA gave them
    std::vector<std::string> add_recipients;     // bare addresses
    std::vector<HeaderEdit> header_edits;
    std::string log_line;  // one line, beginning with the queue id
};

enum class Direction { inbound, outbound };

// Where the MTA has already routed a recipient when the milter sees it: Sendmail's
// {rcpt_mailer}, {rcpt_host} and {rcpt_addr} at RCPT (for its local mailer, addr is
// the user). Empty when the MTA did not say.
struct MtaRoute {
    std::string_view mailer;
    std::string_view host;
    std::string_view addr;
};

// How the message reaches the MTA: from a client over SMTP, or submitted on this
// host (sendmail(1)), which is outbound whatever internal-networks holds.
enum class ClientKind { smtp, local_submission };

class Session {
  public:
    Session(std::shared_ptr<const Policy> policy, const Clock& clock);

    // address: the client's IP as text, empty when the MTA gave none; kind: what the
    // milter engine read from the MTA's connect data (milter/replies.hpp).
    Decision connect(std::string_view hostname, std::string_view address,
                     ClientKind kind = ClientKind::smtp);
    Decision helo(std::string_view name);
    // auth_authen: the {auth_authen} macro, empty when not authenticated.
    Decision mail(std::string_view sender, std::string_view auth_authen = {});
    // queue_id: the MTA's, when it has one yet, for the log line of a refusal.
    // route: where the MTA routed the recipient; a tag or SRS address it already
    // routed to the real mailbox (Sendmail's reverse socket map) is not rewritten again.
    Decision rcpt(std::string_view recipient, std::string_view queue_id = {},
                  const MtaRoute& route = {});
    Decision header(std::string_view name, std::string_view value);
    Decision end_of_headers();
    Decision body(std::string_view chunk);
    EndOfMessage end_of_message(std::string_view queue_id);
    // The message ends without EOM; the connection stays.
    void abort();

    // Counters to update; optional, and must outlive the session.
    void set_metrics(Metrics* metrics) { metrics_ = metrics; }
    // Storm counters and bounce records; optional, must outlive the session.
    void set_state(StateStore* state) { state_ = state; }

    Direction direction() const { return direction_; }
    const Policy& policy() const { return *policy_; }

  private:
    struct Rewrite {
        std::string as_given;  // recipient as the MTA gave it
        std::string original;  // the real mailbox
        // The MTA already delivers to the real mailbox: removing the tag and adding
        // the mailbox again would, on Sendmail, remove both (see rcpt()).
        bool routed_by_mta = false;
    };
    struct Tag {
        std::string recipient;  // bare address
        std::string result;
    };

    void reset_message();
    Decision outbound_rcpt(const std::string& bare, const std::string& domain);
    // keep: false when the recipient is refused (or not ours: then already recorded).
    // loose: read with parse_address_loose, so it cannot be a valid tag or SRS address.
    Decision inbound_rcpt(const Address& a, const std::string& raw, const std::string& bare,
                          std::string& mailbox, bool& keep, bool loose);
    std::optional<Decision> storm_check(const std::string& raw, const std::string& bare,
                                        const std::string& mailbox, bool& keep);
    // replay-limit: bounces to one valid signed address (bare) beyond the limit.
    std::optional<Decision> replay_check(const std::string& raw, const std::string& bare,
                                         const std::string& domain, bool& keep);
    // Applies on-state-error: a tempfail decision, or nullopt to go on without state.
    std::optional<Decision> state_failure(const std::string& why);
    // refuse-unknown-after: a recipient its own server reported as non-existent.
    std::optional<Decision> unknown_check(const std::string& bare);
    // SRS for a foreign sender whose mail we forward, as the socketmap's forward map
    // does it; returns the log's reason (srs0, already-srs, ...).
    std::string forward_sender(EndOfMessage& out, std::string& why, std::optional<SpfVerdict>& spf);
    bool dropped_recipient(const std::string& raw) const;
    void record_hard_bounces(const Classification& c);
    // recipient: as the MTA gave it (kept for removal); shown: the bare address for texts;
    // check: its name in the log (check=...); result: in X-Backstop-Result and metrics.
    Decision apply(Action action, const std::string& check, const std::string& recipient,
                   const std::string& shown, const std::string& result, const std::string& why,
                   bool& keep);
    Decision reject_reply(Action action, const std::string& recipient,
                          const std::string& why) const;
    Decision check_rcpt(std::string_view recipient);
    // The fields every line of this message begins with: queue ID, direction, client, sender.
    LogLine line_start(std::string_view queue_id) const;
    std::string refusal_line(std::string_view queue_id, std::string_view recipient,
                             const Decision& d) const;
    EndOfMessage outbound_eom(std::string_view queue_id);
    EndOfMessage inbound_eom(std::string_view queue_id);
    void remove_forged_headers(EndOfMessage& out) const;

    void count(Counter c, std::uint64_t n = 1) const {
        if (metrics_) metrics_->add(c, n);
    }

    std::shared_ptr<const Policy> policy_;
    const Clock& clock_;
    Metrics* metrics_ = nullptr;
    StateStore* state_ = nullptr;
    std::string state_error_;  // last store failure in this message, for the log
    bool internal_client_ = false;
    bool local_submission_ = false;
    std::string client_;
    Direction direction_ = Direction::inbound;
    std::string refused_check_;  // the check behind the last refusal at RCPT

    // Per message.
    std::string sender_;  // bare address, "" for <>
    bool sender_null_ = true;
    bool bounce_ = false;
    // A bounce our own MTA made (Postfix's bounce(8) through non_smtpd_milters, with
    // internal_mail_filter_classes = bounce): inbound, reversed, classified and
    // recorded, never refused.
    bool own_bounce_ = false;
    bool relay_recipient_ = false;         // a recipient at a [domains] relay domain
    std::vector<std::string> recipients_;  // bare addresses
    bool any_foreign_recipient_ = false;
    std::vector<Rewrite> rewrites_;
    std::vector<Tag> tags_;
    std::vector<std::string> dropped_;         // recipients discarded by a 'discard' action
    std::vector<std::string> unsigned_local_;  // non-bounce mail to untagged local addresses
    std::vector<std::pair<std::string, int>> forged_;  // X-Backstop-* headers seen
    std::vector<std::pair<std::string, int>> header_counts_;
    std::string message_id_;
    MessageBuffer buffer_;
    std::vector<std::string> checks_;   // checks that tagged, discarded or let pass a recipient
    std::vector<std::string> exempts_;  // exemptions that decided, as key:pattern
};

}  // namespace backstop
