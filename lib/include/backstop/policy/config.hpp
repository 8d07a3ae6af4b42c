// The milter's configuration: one INI file (key = value, [sections]) whose keys are
// the long command-line options, e.g. [srs] domain = x is --srs.domain x.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backstop/base/result.hpp"

namespace backstop {

// What to do with a recipient that fails a check.
enum class Action { reject, tempfail, tag, discard, accept };
const char* to_string(Action a);

// [srs] original-envelope: how a forwarded sender travels in its SRS address.
enum class OriginalEnvelope {
    embedded,   // in the SRS0 local part; a sender too long for it goes out unchanged
    database,   // every plain sender as an alias in the state store (postsrsd 2's database)
    automatic,  // an alias only for a sender too long to embed
};
const char* to_string(OriginalEnvelope e);

struct Config {
    // [general] (top of the file, before any section)
    std::string socket = "inet:8891@127.0.0.1";
    std::string engine = "native";  // native | libmilter: who speaks the milter protocol
    std::string socket_mode;        // octal, unix sockets only, e.g. 0660
    std::string socket_group;       // group of the unix socket
    std::string user;               // drop to this user after opening the socket
    std::string pidfile;
    bool foreground = false;
    bool allow_root = false;
    std::string log_level = "info";
    std::string stats_socket;
    std::string state = "memory";            // memory | sqlite:/path | redis://host:port/db
    Action on_state_error = Action::accept;  // accept | tempfail when the store fails
    std::string redis_password_file;         // the Redis password, a key file
    std::string redis_ca_file;               // CA of the Redis server's certificate (rediss)
    std::string redis_cert_file;             // client certificate for Redis over TLS
    std::string redis_key_file;              // its key, a key file
    std::string socketmap;                   // socketmap for the MTA (forward, reverse); "": off
    int socketmap_idle_timeout = 60;         // seconds before an idle socketmap client is closed
    int socketmap_max_connections = 1000;    // socketmap clients at once; more are closed at once

    // [domains]
    std::vector<std::string> local_domains;
    // Domains we accept and hand to another server (a filtering gateway): mail to
    // them from foreign senders is forwarded, so it gets SRS like any forwarded mail.
    std::vector<std::string> relay_domains;
    std::string internal_networks = "127.0.0.0/8, ::1/128";

    // [srs]
    bool srs_enable = false;
    std::string srs_domain;
    std::string srs_secrets;
    int srs_hash_length = 4;
    int srs_hash_minimum = 4;
    int srs_max_age = 21;
    char srs_separator = '=';
    std::string srs_alphabet = "std";
    bool srs_spf_check = false;         // rewrite only when SPF would not pass as is
    std::string srs_spf_relay_address;  // our relay's outbound IP for that SPF check
    int srs_spf_timeout_ms = 2000;
    // Unset: auto with a sqlite or redis state, embedded with memory (see original_envelope()).
    std::optional<OriginalEnvelope> srs_original_envelope;

    // [batv]
    bool batv_enable = false;
    std::string batv_keys;
    int batv_lifetime = 7;
    bool batv_subaddress = false;
    std::vector<std::string> batv_exempt_senders;
    std::vector<std::string> batv_exempt_recipient_domains;

    // [inbound]
    Action unsigned_bounce = Action::reject;
    Action bad_signature = Action::reject;
    Action unsigned_autoreply = Action::tag;
    std::vector<std::string> bounce_senders = {"MAILER-DAEMON@*"};
    std::vector<std::string> exempt_recipients = {"postmaster@*", "abuse@*"};
    std::string reject_text =
        "This address did not send the message you are bouncing (backscatter refused)";
    std::string localpart_deny;  // file of regular expressions, one per line
    Action localpart_deny_action = Action::reject;
    std::string valid_localparts;  // file of local parts, one per line
    Action invalid_localpart_action = Action::reject;

    std::string storm_limit = "20/10m";  // bounces+auto-replies per local recipient; "off" disables
    Action storm_action = Action::tempfail;
    std::vector<std::string> storm_exempt;
    std::vector<std::string> storm_limits;  // PATTERN=RATE|off, first match wins over storm_limit
    int replay_limit = 0;                   // bounces one signed address may bring back; 0: off
    Action replay_action = Action::reject;
    // Hard bounces recorded for a relay-domain or local recipient before mail to it is
    // refused at RCPT (550 5.1.1); 0: off.
    int refuse_unknown_after = 0;

    // [outbound]
    int suppress_after = 0;  // hard bounces before mail to that address is refused; 0: off
    Action suppress_action = Action::tag;
    int bounce_expiry = 90;  // days a hard-bounce record is kept after its last bounce; 0: forever

    // [watermark]
    bool watermark_enable = false;
    std::string watermark_keys;
    std::string watermark_header = "X-Backstop-Watermark";
    int watermark_lifetime = 14;
    std::string watermark_mailscanner_secret;

    // [classify]
    std::size_t classify_max_bytes = 512 * 1024;

    std::string source;  // the file it came from, for messages
};

// Parses a config file (path may be empty: defaults) and command-line arguments
// (argv-style, without the program name); the command line wins. Unknown keys and
// bad values are errors naming the file, line and key. Key files are not read here.
Result<Config, Failure> parse_config(const std::string& path, const std::vector<std::string>& args);

// The same for file contents already in memory; 'origin' names them in messages.
Result<Config, Failure> parse_config_text(const std::string& text, const std::string& origin,
                                          const std::vector<std::string>& args);

// What the milter needs before it starts, beyond a valid file: [domains] local, so
// that it never signs or refuses for a domain nobody named. Empty when ready, else
// one line that says what to set, beginning with the file's name.
std::string missing_for_milter(const Config& c);

// Settings that are valid but most likely not meant, one line each (without a
// "warning:" prefix), for --check-config and the start-up log.
std::vector<std::string> config_warnings(const Config& c);

// [srs] original-envelope as set, or its default for the state store.
OriginalEnvelope original_envelope(const Config& c);

// The option names and help, for --help and the man page.
std::string config_help();

}  // namespace backstop
