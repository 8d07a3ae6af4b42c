#include "backstop/policy/config.hpp"

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "backstop/base/ascii.hpp"
#include "backstop/policy/network.hpp"
#include "backstop/state/store.hpp"

namespace backstop {

namespace po = boost::program_options;

namespace {

using Setter = std::function<std::string(Config&, const std::string&)>;

struct Key {
    const char* name;  // section.key, or key for the top of the file
    const char* help;
    Setter set;
    bool flag = false;  // --name alone on the command line means true
};

std::string trim(std::string s) {
    std::size_t b = s.find_first_not_of(" \t\r");
    std::size_t e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<std::string> split_list(const std::string& v) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : v) {
        if (c == ',' || c == ' ' || c == '\t') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

Setter text(std::string Config::*field) {
    return [field](Config& c, const std::string& v) {
        c.*field = v;
        return std::string();
    };
}

Setter list(std::vector<std::string> Config::*field) {
    return [field](Config& c, const std::string& v) {
        c.*field = split_list(v);
        return std::string();
    };
}

Setter boolean(bool Config::*field) {
    return [field](Config& c, const std::string& v) {
        if (v == "true" || v == "yes" || v == "on" || v == "1") {
            c.*field = true;
        } else if (v == "false" || v == "no" || v == "off" || v == "0") {
            c.*field = false;
        } else {
            return "'" + v + "' is not true or false";
        }
        return std::string();
    };
}

Setter integer(int Config::*field, int lo, int hi) {
    return [field, lo, hi](Config& c, const std::string& v) {
        std::size_t used = 0;
        int n = 0;
        try {
            n = std::stoi(v, &used);
        } catch (...) {
            used = 0;
        }
        if (used == 0 || used != v.size() || n < lo || n > hi) {
            return "'" + v + "' is not a whole number from " + std::to_string(lo) + " to " +
                   std::to_string(hi);
        }
        c.*field = n;
        return std::string();
    };
}

Setter action(Action Config::*field) {
    return [field](Config& c, const std::string& v) {
        for (Action a :
             {Action::reject, Action::tempfail, Action::tag, Action::discard, Action::accept}) {
            if (v == to_string(a)) {
                c.*field = a;
                return std::string();
            }
        }
        return "'" + v + "' is not one of reject, tempfail, tag, discard, accept";
    };
}

Setter one_of(std::string Config::*field, std::vector<std::string> allowed) {
    return [field, allowed](Config& c, const std::string& v) {
        for (const auto& a : allowed) {
            if (v == a) {
                c.*field = v;
                return std::string();
            }
        }
        std::string all;
        for (const auto& a : allowed) all += (all.empty() ? "" : ", ") + a;
        return "'" + v + "' is not one of " + all;
    };
}

// The libmilter spelling of a socket; empty when it is one.
std::string check_socket_spec(const std::string& v) {
    if (v.rfind("inet:", 0) != 0 && v.rfind("inet6:", 0) != 0 && v.rfind("unix:", 0) != 0 &&
        v.rfind("local:", 0) != 0) {
        return "'" + v + "' is not inet:PORT@HOST, inet6:PORT@HOST or unix:/path";
    }
    if (v.rfind("inet", 0) == 0) {
        std::string rest = v.substr(v.find(':') + 1);
        std::size_t at = rest.find('@');
        std::string port = rest.substr(0, at);
        if (port.empty() || port.size() > 5 ||
            port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
            return "'" + v + "': the port must be a number (libmilter syntax is inet:PORT@HOST)";
        }
    }
    return {};
}

std::string set_socket(Config& c, const std::string& v) {
    if (auto why = check_socket_spec(v); !why.empty()) return why;
    c.socket = v;
    return {};
}

// Empty: no socketmap.
std::string set_socketmap(Config& c, const std::string& v) {
    if (!v.empty()) {
        if (auto why = check_socket_spec(v); !why.empty()) return why;
    }
    c.socketmap = v;
    return {};
}

std::string set_stats_socket(Config& c, const std::string& v) {
    if (v.empty()) {
        c.stats_socket.clear();
        return {};
    }
    std::size_t at = v.find('@');
    std::string port = v.rfind("inet:", 0) == 0
                           ? v.substr(5, at == std::string::npos ? std::string::npos : at - 5)
                           : "";
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535 ||
        at == std::string::npos || !IpAddress::parse(v.substr(at + 1))) {
        return "'" + v + "' is not inet:PORT@IP (e.g. inet:9891@127.0.0.1)";
    }
    c.stats_socket = v;
    return {};
}

std::string set_state(Config& c, const std::string& v) {
    // The syntax (host, port range, database); the store connects on first use, and
    // the redis-* files are read when it is opened.
    auto needs = check_state_spec(v);
    if (!needs) return needs.error().message;
    c.state = v;
    return {};
}

std::string set_on_state_error(Config& c, const std::string& v) {
    if (v == "accept")
        c.on_state_error = Action::accept;
    else if (v == "tempfail")
        c.on_state_error = Action::tempfail;
    else
        return "'" + v + "' is not accept or tempfail";
    return {};
}

std::string set_original_envelope(Config& c, const std::string& v) {
    for (auto e :
         {OriginalEnvelope::embedded, OriginalEnvelope::database, OriginalEnvelope::automatic}) {
        if (v == to_string(e)) {
            c.srs_original_envelope = e;
            return {};
        }
    }
    return "'" + v + "' is not embedded, database or auto";
}

std::string set_storm_limit(Config& c, const std::string& v) {
    if (v != "off") {
        auto r = parse_rate(v);
        if (!r) return r.error().message;
    }
    c.storm_limit = v;
    return {};
}

// PATTERN=RATE entries, e.g. "postmaster@example.org=100/10m *@lists.example.org=off".
std::string set_storm_limits(Config& c, const std::string& v) {
    c.storm_limits.clear();
    for (auto& entry : split_list(v)) {
        std::size_t eq = entry.rfind('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
            return "'" + entry + "' is not PATTERN=RATE (e.g. *@lists.example.org=200/10m)";
        }
        std::string rate = entry.substr(eq + 1);
        if (rate != "off") {
            auto r = parse_rate(rate);
            if (!r) return "'" + entry + "': " + r.error().message;
        }
        c.storm_limits.push_back(entry);
    }
    return {};
}

std::string set_suppress_action(Config& c, const std::string& v) {
    if (v == "tag")
        c.suppress_action = Action::tag;
    else if (v == "reject")
        c.suppress_action = Action::reject;
    else
        return "'" + v + "' is not tag or reject";
    return {};
}

std::string set_socket_mode(Config& c, const std::string& v) {
    if (v.empty() || v.size() > 4 || v.find_first_not_of("01234567") != std::string::npos) {
        return "'" + v + "' is not an octal mode like 0660";
    }
    c.socket_mode = v;
    return {};
}

std::string set_separator(Config& c, const std::string& v) {
    if (v != "=" && v != "+" && v != "-") return "'" + v + "' is not one of = + -";
    c.srs_separator = v[0];
    return {};
}

std::string set_max_bytes(Config& c, const std::string& v) {
    std::size_t used = 0;
    unsigned long long n = 0;
    try {
        n = std::stoull(v, &used);
    } catch (...) {
        return "'" + v + "' is not a size (bytes, or with K or M)";
    }
    std::string unit = v.substr(used);
    if (n > 64ull * 1024 * 1024) return "'" + v + "' must be between 1K and 64M";
    if (unit == "K" || unit == "k")
        n *= 1024;
    else if (unit == "M" || unit == "m")
        n *= 1024 * 1024;
    else if (!unit.empty())
        return "'" + v + "' is not a size (bytes, or with K or M)";
    if (n < 1024 || n > 64ull * 1024 * 1024) return "'" + v + "' must be between 1K and 64M";
    c.classify_max_bytes = std::size_t(n);
    return {};
}

std::string set_networks(Config& c, const std::string& v) {
    auto n = parse_networks(v);
    if (!n) return n.error().message;
    c.internal_networks = v;
    return {};
}

std::string set_spf_relay(Config& c, const std::string& v) {
    if (!IpAddress::parse(v)) return "'" + v + "' is not an IP address";
    c.srs_spf_relay_address = v;
    return {};
}

Setter domains(std::vector<std::string> Config::*field) {
    return [field](Config& c, const std::string& v) -> std::string {
        std::vector<std::string> out;
        for (auto& d : split_list(v)) {
            if (d.find('@') != std::string::npos || d.find_first_of("<>\"") != std::string::npos) {
                return "'" + d + "' is not a domain";
            }
            out.push_back(d);
        }
        c.*field = std::move(out);
        return {};
    };
}

const std::vector<Key>& keys() {
    static const std::vector<Key> k = {
        {"socket", "milter socket: inet:PORT@HOST, inet6:PORT@HOST, unix:/path", set_socket},
        {"engine",
         "who speaks the milter protocol: native (event loops) or libmilter (a thread per "
         "connection); not changed by a reload",
         one_of(&Config::engine, {"native", "libmilter"})},
        {"socket-mode", "permissions of a unix socket, e.g. 0660", set_socket_mode},
        {"socket-group", "group of a unix socket, e.g. postfix", text(&Config::socket_group)},
        {"user", "drop privileges to this user after opening the socket", text(&Config::user)},
        {"pidfile", "write the process id here", text(&Config::pidfile)},
        {"foreground", "stay in the foreground and log to stderr", boolean(&Config::foreground),
         true},
        {"allow-root", "allow running as root without 'user'", boolean(&Config::allow_root), true},
        {"stats-socket",
         "serve Prometheus metrics (HTTP GET /metrics) on inet:PORT@HOST; empty: off",
         set_stats_socket},
        {"state",
         "shared state: memory, sqlite:/var/lib/backstop/state.db, redis://[user@]host:port/db, "
         "rediss://... (TLS) or redis-sentinel://host:26379,host:26379/MASTER/db (250 ms per call)",
         set_state},
        {"on-state-error", "when the state store fails: accept or tempfail", set_on_state_error},
        {"redis-password-file",
         "file holding the Redis password (of the user in the state URL, or the default user); "
         "refused when group or others can read it",
         text(&Config::redis_password_file)},
        {"redis-ca-file",
         "PEM CA certificate(s) that sign the Redis server's (required with rediss)",
         text(&Config::redis_ca_file)},
        {"redis-cert-file", "PEM client certificate for Redis over TLS (with redis-key-file)",
         text(&Config::redis_cert_file)},
        {"redis-key-file", "PEM key of redis-cert-file; refused when group or others can read it",
         text(&Config::redis_key_file)},
        {"socketmap",
         "also serve the socketmap maps forward and reverse to the MTA on inet:PORT@HOST, "
         "inet6:PORT@HOST or unix:/path; empty: off",
         set_socketmap},
        {"socketmap-idle-timeout", "seconds before an idle socketmap connection is closed",
         integer(&Config::socketmap_idle_timeout, 1, 86400)},
        {"socketmap-max-connections",
         "socketmap connections at once; beyond it new ones are closed at once",
         integer(&Config::socketmap_max_connections, 1, 100000)},
        {"log-level", "error, warning, info or debug",
         one_of(&Config::log_level, {"error", "warning", "info", "debug"})},
        {"domains.local", "our domains (comma or space separated)",
         domains(&Config::local_domains)},
        {"domains.relay",
         "domains we accept and relay to another server (a filtering gateway); mail to them "
         "from foreign senders gets SRS",
         domains(&Config::relay_domains)},
        {"domains.internal-networks", "clients treated as outbound (CIDR list)", set_networks},
        {"srs.enable", "rewrite forwarded foreign senders with SRS", boolean(&Config::srs_enable),
         true},
        {"srs.domain", "SRS domain of rewritten senders", text(&Config::srs_domain)},
        {"srs.secrets", "SRS secrets file (first signs, all verify)", text(&Config::srs_secrets)},
        {"srs.hash-length", "base64 characters of hash emitted",
         integer(&Config::srs_hash_length, 1, 27)},
        {"srs.hash-minimum", "fewest hash characters accepted",
         integer(&Config::srs_hash_minimum, 1, 27)},
        {"srs.max-age", "days an SRS address stays valid", integer(&Config::srs_max_age, 1, 1000)},
        {"srs.separator", "separator after SRS0/SRS1: = + -", set_separator},
        {"srs.alphabet", "base64 alphabet emitted: std or url",
         one_of(&Config::srs_alphabet, {"std", "url"})},
        {"srs.spf-check",
         "SRS only when SPF would fail or softfail for the sender (DNS failure: rewrite)",
         boolean(&Config::srs_spf_check), true},
        {"srs.spf-relay-address", "our relay's outbound IP address, for spf-check", set_spf_relay},
        {"srs.spf-timeout", "milliseconds an SPF check may take before we rewrite anyway",
         integer(&Config::srs_spf_timeout_ms, 50, 30000)},
        {"srs.original-envelope",
         "embedded (in the SRS address), database (every sender stored as a postsrsd 2 alias) "
         "or auto (only senders too long to embed); default: auto with a sqlite or redis "
         "state, embedded with memory",
         set_original_envelope},
        {"batv.enable", "sign our senders with BATV prvs tags", boolean(&Config::batv_enable),
         true},
        {"batv.keys", "BATV keys file ('<digit> <secret>', first signs)", text(&Config::batv_keys)},
        {"batv.lifetime", "days a tag stays valid", integer(&Config::batv_lifetime, 1, 999)},
        {"batv.subaddress", "also accept local+prvs=TAG@domain", boolean(&Config::batv_subaddress),
         true},
        {"batv.exempt-senders", "senders never tagged (user@domain, @domain, *@domain)",
         list(&Config::batv_exempt_senders)},
        {"batv.exempt-recipient-domains",
         "no tag when mailing these domains (lists that check the sender)",
         list(&Config::batv_exempt_recipient_domains)},
        {"inbound.unsigned-bounce", "bounce to an unsigned local address",
         action(&Config::unsigned_bounce)},
        {"inbound.bad-signature", "recipient with an invalid or expired tag",
         action(&Config::bad_signature)},
        {"inbound.unsigned-autoreply", "auto-reply without our watermark to an unsigned address",
         action(&Config::unsigned_autoreply)},
        {"inbound.bounce-senders", "senders treated as bounces besides <> (patterns)",
         list(&Config::bounce_senders)},
        {"inbound.exempt-recipients", "recipients always accepted (patterns)",
         list(&Config::exempt_recipients)},
        {"inbound.reject-text", "text of the 5xx/4xx reply", text(&Config::reject_text)},
        {"inbound.localpart-deny", "file of regular expressions: bounces to matching local parts",
         text(&Config::localpart_deny)},
        {"inbound.localpart-deny-action", "action for localpart-deny matches",
         action(&Config::localpart_deny_action)},
        {"inbound.valid-localparts", "file of valid local parts: bounces to others",
         text(&Config::valid_localparts)},
        {"inbound.invalid-localpart-action",
         "action for bounces to local parts not in valid-localparts",
         action(&Config::invalid_localpart_action)},
        {"inbound.storm-limit",
         "bounces and auto-replies per local recipient, e.g. 20/10m; off disables",
         set_storm_limit},
        {"inbound.storm-action", "action above the storm limit", action(&Config::storm_action)},
        {"inbound.storm-exempt", "recipients never storm-limited (patterns)",
         list(&Config::storm_exempt)},
        {"inbound.storm-limits",
         "storm limits for some recipients or domains: PATTERN=RATE or PATTERN=off, first match "
         "wins",
         set_storm_limits},
        {"inbound.replay-limit",
         "bounces one signed address may bring back within its lifetime; 0: off",
         integer(&Config::replay_limit, 0, 1000000)},
        {"inbound.replay-action", "action above the replay limit", action(&Config::replay_action)},
        {"inbound.refuse-unknown-after",
         "hard bounces recorded for a relay-domain or local recipient before mail to it is "
         "refused (550 5.1.1); 0: off",
         integer(&Config::refuse_unknown_after, 0, 1000000)},
        {"outbound.suppress-after",
         "hard bounces after which mail to that address gets suppress-action; 0: off",
         integer(&Config::suppress_after, 0, 1000000)},
        {"outbound.suppress-action", "tag or reject mail to suppressed addresses",
         set_suppress_action},
        {"outbound.bounce-expiry",
         "days a hard-bounce record is kept after its last bounce; 0: forever",
         integer(&Config::bounce_expiry, 0, 100000)},
        {"watermark.enable", "add a watermark header to outbound mail",
         boolean(&Config::watermark_enable), true},
        {"watermark.keys", "watermark keys file (first signs, all verify)",
         text(&Config::watermark_keys)},
        {"watermark.header", "watermark header name", text(&Config::watermark_header)},
        {"watermark.lifetime", "days a watermark stays valid",
         integer(&Config::watermark_lifetime, 1, 3650)},
        {"watermark.mailscanner-secret", "also verify MailScanner watermarks with this secret",
         text(&Config::watermark_mailscanner_secret)},
        {"classify.max-bytes", "bytes of a message examined (K, M suffixes)", set_max_bytes},
    };
    return k;
}

const Key* find_key(const std::string& name) {
    for (const auto& k : keys()) {
        if (name == k.name) return &k;
    }
    return nullptr;
}

po::options_description describe() {
    po::options_description desc("configuration (also as --KEY on the command line)");
    for (const auto& k : keys()) {
        auto* v = po::value<std::string>();
        if (k.flag) v->implicit_value("true");
        desc.add_options()(k.name, v, k.help);
    }
    return desc;
}

// The two settings a fresh install must make: one line each, saying what to set.
constexpr const char* kLocalNotSet =
    "[domains] local is not set: set it to the domains this host sends mail for "
    "(local = example.org)";
constexpr const char* kSrsDomainNotSet =
    "[srs] domain is not set: set it to a domain whose MX is this host, for the senders of "
    "forwarded mail (domain = fwd.example.org), or set enable = false";

std::string check_redis(const Config& c) {
    auto needs = check_state_spec(c.state);
    if (!needs) return needs.error().message;
    if (!needs->remote) {
        for (const auto& [key, value] : {std::pair<const char*, const std::string*>{
                                             "redis-password-file", &c.redis_password_file},
                                         {"redis-ca-file", &c.redis_ca_file},
                                         {"redis-cert-file", &c.redis_cert_file},
                                         {"redis-key-file", &c.redis_key_file}}) {
            if (!value->empty()) return std::string(key) + ": set, but state is not Redis";
        }
        return {};
    }
    if (needs->tls && c.redis_ca_file.empty())
        return "redis-ca-file: required with TLS (rediss): the CA that signs the Redis "
               "server's certificate";
    if (!needs->tls && !(c.redis_ca_file.empty() && c.redis_cert_file.empty()))
        return "redis-ca-file and redis-cert-file need TLS: state = rediss://...";
    if (needs->password && c.redis_password_file.empty())
        return "redis-password-file: required when the state URL names a user";
    if (c.redis_cert_file.empty() != c.redis_key_file.empty())
        return "redis-cert-file and redis-key-file go together: set both or neither";
    return {};
}

std::string check_whole(const Config& c) {
    if (auto why = check_redis(c); !why.empty()) return why;
    // Our domains first: an unedited sample lacks them and the SRS domain, and the
    // first thing to set is the one to name.
    if ((c.batv_enable || c.srs_enable) && c.local_domains.empty()) return kLocalNotSet;
    if (c.srs_enable && c.srs_domain.empty()) return kSrsDomainNotSet;
    if (c.srs_enable && c.srs_secrets.empty()) return "[srs] secrets: required when srs is enabled";
    // A relay domain is someone else's: signing for it, or relaying our own SRS
    // addresses to another server, would be a mistake the config cannot mean.
    for (const auto& r : c.relay_domains) {
        for (const auto& l : c.local_domains) {
            if (iequals(r, l))
                return "[domains] relay: '" + r +
                       "' is also in [domains] local; a domain is one or the other";
        }
        if (c.srs_enable && iequals(r, c.srs_domain))
            return "[domains] relay: '" + r + "' is the [srs] domain, whose mail must come here";
    }
    if (c.srs_hash_minimum > c.srs_hash_length)
        return "[srs] hash-minimum: larger than hash-length";
    if (c.srs_spf_check && c.srs_spf_relay_address.empty()) {
        return "[srs] spf-relay-address: required when spf-check is on";
    }
    // Aliases in memory would die with the process, and their bounces with them.
    if (c.srs_original_envelope && *c.srs_original_envelope != OriginalEnvelope::embedded &&
        (c.state.empty() || c.state == "memory")) {
        return std::string("[srs] original-envelope = ") + to_string(*c.srs_original_envelope) +
               " keeps aliases in the state store: set state = sqlite:/path or redis://host, "
               "or original-envelope = embedded";
    }
    if (c.batv_enable && c.batv_keys.empty()) return "[batv] keys: required when batv is enabled";
    if (c.watermark_enable && c.watermark_keys.empty())
        return "[watermark] keys: required when watermark is enabled";
    // RFC 5322 field name: printable ASCII without ':' or space.
    bool header_ok = !c.watermark_header.empty();
    for (unsigned char ch : c.watermark_header)
        header_ok = header_ok && ch > 32 && ch < 127 && ch != ':';
    if (!header_ok)
        return "[watermark] header: '" + c.watermark_header + "' is not a header field name";
    if (!c.watermark_mailscanner_secret.empty() && c.watermark_keys.empty()) {
        return "[watermark] mailscanner-secret: needs [watermark] keys as well";
    }
    return {};
}

}  // namespace

const char* to_string(Action a) {
    switch (a) {
        case Action::reject:
            return "reject";
        case Action::tempfail:
            return "tempfail";
        case Action::tag:
            return "tag";
        case Action::discard:
            return "discard";
        case Action::accept:
            return "accept";
    }
    return "reject";
}

const char* to_string(OriginalEnvelope e) {
    switch (e) {
        case OriginalEnvelope::embedded:
            return "embedded";
        case OriginalEnvelope::database:
            return "database";
        case OriginalEnvelope::automatic:
            return "auto";
    }
    return "embedded";
}

OriginalEnvelope original_envelope(const Config& c) {
    if (c.srs_original_envelope) return *c.srs_original_envelope;
    return c.state.empty() || c.state == "memory" ? OriginalEnvelope::embedded
                                                  : OriginalEnvelope::automatic;
}

Result<Config, Failure> parse_config(const std::string& path,
                                     const std::vector<std::string>& args) {
    std::string text;
    if (!path.empty()) {
        errno = 0;
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            return Failure{path + ": cannot open the configuration file" +
                           (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string())};
        }
        std::ostringstream all;
        all << in.rdbuf();
        text = all.str();
    }
    return parse_config_text(text, path, args);
}

static Result<Config, Failure> parse_config_text_impl(const std::string& text,
                                                      const std::string& path,
                                                      const std::vector<std::string>& args) {
    Config c;
    c.source = path;
    std::map<std::string, bool> set_by_command_line;

    // The command line first: it wins over the file.
    if (!args.empty()) {
        po::variables_map vm;
        try {
            std::vector<std::string> a = args;
            // parsed_options keeps a pointer to the description: it must outlive store().
            const po::options_description desc = describe();
            auto parsed = po::command_line_parser(a).options(desc).run();
            auto stray = po::collect_unrecognized(parsed.options, po::include_positional);
            if (!stray.empty())
                return Failure{"command line: unexpected argument '" + stray.front() + "'"};
            po::store(parsed, vm);
        } catch (const po::error& e) {
            return Failure{std::string("command line: ") + e.what()};
        }
        for (const auto& [name, value] : vm) {
            const Key* k = find_key(name);
            if (!k) continue;
            if (auto why = k->set(c, value.as<std::string>()); !why.empty()) {
                return Failure{"command line: --" + name + ": " + why};
            }
            set_by_command_line[name] = true;
        }
    }

    {
        std::istringstream in(text);
        std::string line, section;
        std::map<std::string, int> seen;
        for (int number = 1; std::getline(in, line); ++number) {
            std::string where = path + ":" + std::to_string(number) + ": ";
            std::string t = trim(line);
            if (t.empty() || t[0] == '#' || t[0] == ';') continue;
            if (t.front() == '[') {
                if (t.back() != ']') return Failure{where + "section header without ']'"};
                section = trim(t.substr(1, t.size() - 2));
                if (section == "general") section.clear();
                continue;
            }
            std::size_t eq = t.find('=');
            if (eq == std::string::npos) return Failure{where + "expected 'key = value'"};
            std::string key = trim(t.substr(0, eq));
            std::string value = trim(t.substr(eq + 1));
            // Values may carry a trailing comment after whitespace: "7   # days".
            if (std::size_t hash = value.find(" #"); hash != std::string::npos)
                value = trim(value.substr(0, hash));
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
                value = value.substr(1, value.size() - 2);
            std::string name = section.empty() ? key : section + "." + key;
            const Key* k = find_key(name);
            if (!k) {
                return Failure{where + "unknown key '" + key + "'" +
                               (section.empty() ? "" : " in [" + section + "]")};
            }
            if (seen.count(name)) {
                return Failure{where + "'" + key + "' already set on line " +
                               std::to_string(seen[name])};
            }
            seen[name] = number;
            if (set_by_command_line.count(name)) continue;
            if (auto why = k->set(c, value); !why.empty()) return Failure{where + key + ": " + why};
        }
    }
    if (auto why = check_whole(c); !why.empty())
        return Failure{(path.empty() ? std::string() : path + ": ") + why};
    return c;
}

Result<Config, Failure> parse_config_text(const std::string& text, const std::string& path,
                                          const std::vector<std::string>& args) {
    // Every setter reports errors as values; this is the backstop for a library
    // call that throws (an overflowing number, say): still a message, never a crash.
    try {
        return parse_config_text_impl(text, path, args);
    } catch (const std::exception& e) {
        return Failure{(path.empty() ? std::string("configuration") : path) + ": " + e.what()};
    }
}

std::string missing_for_milter(const Config& c) {
    if (!c.local_domains.empty()) return {};
    return (c.source.empty() ? std::string() : c.source + ": ") + kLocalNotSet;
}

std::vector<std::string> config_warnings(const Config& c) {
    std::vector<std::string> out;
    // Postfix's sendmail(1) mail is recognised by its connect data; Sendmail's comes
    // from its MSP over SMTP from 127.0.0.1, told apart from outside mail only by that.
    auto networks = parse_networks(c.internal_networks);
    auto loopback = IpAddress::parse("127.0.0.1");
    if (networks && loopback && !in_networks(*networks, *loopback)) {
        out.push_back(
            "[domains] internal-networks leaves out 127.0.0.1: with Sendmail, mail from "
            "sendmail(1) reaches the milter over SMTP from 127.0.0.1 (its MSP) and would "
            "leave unsigned; add 127.0.0.1/32 (Postfix's sendmail(1) mail is outbound either "
            "way)");
    }
    if (!c.relay_domains.empty() && !c.srs_enable) {
        out.push_back(
            "[domains] relay is set but [srs] enable is false: mail relayed to those domains "
            "keeps its foreign sender and fails SPF at their server");
    }
    return out;
}

std::string config_help() {
    std::ostringstream out;
    out << describe();
    return out.str();
}

}  // namespace backstop
